//! `xvsd`'s command line: the clap definition and its translation into
//! daemon [`Options`].
//!
//! It lives in the library rather than in the binary so that the tools
//! that document the daemon (the `xtask` crate's man page and shell
//! completions) read the very [`command`] that parses it; `xvsd` itself
//! is a thin `main` around [`Args::parse`] and [`Daemon::start`].
//!
//! ```
//! use clap::Parser as _;
//! use xvs_dataplane::cli::Args;
//!
//! let args = Args::try_parse_from(["xvsd", "-i", "eth0", "--cores", "2-3"])?;
//! let opts = args.options();
//! assert_eq!(opts.ifaces, ["eth0"]);
//! assert_eq!(opts.cores, [2, 3]);
//! assert!(Args::try_parse_from(["xvsd"]).is_err(), "--iface is required");
//! # Ok::<(), clap::Error>(())
//! ```
//!
//! [`Daemon::start`]: crate::daemon::Daemon::start

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, ValueEnum, ValueHint};

use crate::daemon::Options;
use crate::worker::WorkerConfig;
use crate::xdp::AttachMode;
use crate::xsk::BindMode;

/// `--xdp-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpMode {
    /// Native (driver) mode, else generic.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Skb,
}

/// `--bind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Bind {
    /// Zero-copy where the driver supports it, else copy.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy only.
    ZeroCopy,
}

/// xvs director daemon: IPVS-style layer-4 load balancing on AF_XDP.
#[derive(Debug, Parser)]
#[command(name = "xvsd", version)]
pub struct Args {
    /// Interface to serve (repeat for NAT: the outside arm first, then the
    /// inside arm).
    #[arg(long = "iface", short = 'i', required = true, value_name = "IF")]
    pub ifaces: Vec<String>,
    /// Cores to pin the workers to, e.g. `2-5,8` (worker n on the n-th).
    #[arg(long, value_name = "LIST", value_parser = parse_cores)]
    pub cores: Option<CoreList>,
    /// Control socket (xvsadm's `--socket` / `XVS_SOCKET`).
    #[arg(
        long,
        env = "XVS_SOCKET",
        value_name = "PATH",
        value_hint = ValueHint::FilePath,
        default_value = xvs_ctl::client::DEFAULT_SOCKET
    )]
    pub socket: PathBuf,
    /// Group (name or id) whose members may use the control socket, besides
    /// root and the daemon's user.
    #[arg(long, value_name = "GROUP", value_parser = parse_group)]
    pub socket_group: Option<u32>,
    /// Configuration to load at start (ipvsadm-restore syntax, as written by
    /// `xvsadm -S`).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value = "auto")]
    pub xdp_mode: XdpMode,
    /// AF_XDP copy or zero-copy.
    #[arg(long, value_enum, default_value = "auto")]
    pub bind: Bind,
    /// Entries per AF_XDP ring (power of two).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub ring_size: u32,
    /// Frames per receive batch.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batch: u16,
    /// Spin on the rings instead of sleeping when idle (a core at 100% per
    /// worker; lowest latency).
    #[arg(long)]
    pub busy_poll: bool,
    /// Most tracked connections and templates.
    #[arg(long, value_name = "N", default_value_t = 1 << 20)]
    pub max_conns: usize,
    /// Real-server slots.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_dests: usize,
    /// Any TCP segment but a RST may create a connection (IPVS sloppy_tcp).
    #[arg(long)]
    pub sloppy_tcp: bool,
    /// File holding the connection-sync secret (at least 16 bytes), shared
    /// by the directors; needed by `xvsadm --start-daemon`.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub sync_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g.
    /// 127.0.0.1:9800.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Keep every capability after set-up (by default all but
    /// CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW are dropped).
    #[arg(long)]
    pub keep_privileges: bool,
}

impl Args {
    /// The daemon options these arguments ask for.
    pub fn options(&self) -> Options {
        Options {
            ifaces: self.ifaces.clone(),
            cores: self.cores.clone().map(|c| c.0).unwrap_or_default(),
            config: self.config.clone(),
            socket: self.socket.clone(),
            socket_group: self.socket_group,
            xdp_mode: match self.xdp_mode {
                XdpMode::Auto => AttachMode::Auto,
                XdpMode::Native => AttachMode::Driver,
                XdpMode::Skb => AttachMode::Skb,
            },
            bind_mode: match self.bind {
                Bind::Auto => BindMode::Auto,
                Bind::Copy => BindMode::Copy,
                Bind::ZeroCopy => BindMode::ZeroCopy,
            },
            ring_size: self.ring_size,
            worker: WorkerConfig {
                batch: usize::from(self.batch),
                busy_poll: self.busy_poll,
                ..WorkerConfig::default()
            },
            max_conns: self.max_conns,
            max_dests: self.max_dests,
            sloppy_tcp: self.sloppy_tcp,
            sync_key_file: self.sync_key_file.clone(),
            metrics: self.metrics,
            keep_privileges: self.keep_privileges,
        }
    }
}

/// The clap command behind [`Args`] (for `--help`, the man page and the
/// shell completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// A group name or numeric id -> gid.
fn parse_group(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("no group `{s}`")),
        Err(e) => Err(format!("looking up group `{s}`: {e}")),
    }
}

/// A `--cores` list (a newtype: clap's derive would read `Vec` as "one
/// number per occurrence").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

/// `2-5,8` -> [2, 3, 4, 5, 8].
pub fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad core number `{t}` in `{s}`"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a > 4096 {
                    return Err(format!("bad core range `{part}`"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err("empty core list".into());
    }
    Ok(CoreList(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_cores("2-5,8").unwrap().0, vec![2, 3, 4, 5, 8]);
        assert_eq!(parse_cores("0").unwrap().0, vec![0]);
        assert!(parse_cores("5-2").is_err());
        assert!(parse_cores("x").is_err());
        assert!(parse_cores("").is_err());
    }

    #[test]
    fn the_whole_command_line_parses() {
        let a = Args::try_parse_from([
            "xvsd",
            "--iface",
            "eth0",
            "--iface",
            "eth1",
            "--cores",
            "2-3",
            "--busy-poll",
        ])
        .unwrap();
        assert_eq!(a.ifaces, ["eth0", "eth1"]);
        assert_eq!(a.cores, Some(CoreList(vec![2, 3])));
        assert!(
            Args::try_parse_from(["xvsd"]).is_err(),
            "--iface is required"
        );
        assert!(Args::try_parse_from(["xvsd", "-i", "eth0", "--cores", "x"]).is_err());
        command().debug_assert();
    }

    #[test]
    fn options_follow_the_arguments() {
        let a = Args::try_parse_from([
            "xvsd",
            "-i",
            "eth0",
            "--xdp-mode",
            "skb",
            "--bind",
            "zero-copy",
            "--batch",
            "32",
            "--sloppy-tcp",
            "--socket",
            "/tmp/x.sock",
        ])
        .unwrap();
        let o = a.options();
        assert_eq!(o.xdp_mode, AttachMode::Skb);
        assert_eq!(o.bind_mode, BindMode::ZeroCopy);
        assert_eq!(o.worker.batch, 32);
        assert!(o.sloppy_tcp && o.cores.is_empty());
        assert_eq!(o.socket, PathBuf::from("/tmp/x.sock"));
        // The defaults of the command line are the daemon's.
        let d = Args::try_parse_from(["xvsd", "-i", "eth0"])
            .unwrap()
            .options();
        let def = Options::default();
        assert_eq!(
            (d.ring_size, d.max_conns, d.max_dests, d.worker.batch),
            (
                def.ring_size,
                def.max_conns,
                def.max_dests,
                def.worker.batch
            )
        );
    }
}
