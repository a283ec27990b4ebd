//! `xvsd`: the xvs director daemon.
//!
//! ```text
//! xvsd --iface IF [--iface IF2 ...] [--cores LIST] [--socket PATH] [--config FILE]
//! ```
//!
//! Runs in the foreground, logs to stderr, exits cleanly on SIGTERM or
//! SIGINT (workers joined, XDP programs detached, socket file removed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use xvs_dataplane::daemon::{Daemon, Options};
use xvs_dataplane::worker::WorkerConfig;
use xvs_dataplane::xdp::AttachMode;
use xvs_dataplane::xsk::BindMode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum XdpMode {
    /// Native (driver) mode, else generic.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Skb,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Bind {
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
struct Args {
    /// Interface to serve (repeat for NAT: the outside arm first, then the
    /// inside arm).
    #[arg(long = "iface", short = 'i', required = true, value_name = "IF")]
    ifaces: Vec<String>,
    /// Cores to pin the workers to, e.g. `2-5,8` (worker n on the n-th).
    #[arg(long, value_name = "LIST", value_parser = parse_cores)]
    cores: Option<CoreList>,
    /// Control socket (xvsadm's `--socket` / `XVS_SOCKET`).
    #[arg(long, env = "XVS_SOCKET", default_value = xvs_ctl::client::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Group (name or id) whose members may use the control socket, besides
    /// root and the daemon's user.
    #[arg(long, value_name = "GROUP", value_parser = parse_group)]
    socket_group: Option<u32>,
    /// Configuration to load at start (ipvsadm-restore syntax, as written by
    /// `xvsadm -S`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How to attach the XDP program.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: XdpMode,
    /// AF_XDP copy or zero-copy.
    #[arg(long, value_enum, default_value = "auto")]
    bind: Bind,
    /// Entries per AF_XDP ring (power of two).
    #[arg(long, default_value_t = 2048)]
    ring_size: u32,
    /// Frames per receive batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch: u16,
    /// Spin on the rings instead of sleeping when idle (a core at 100% per
    /// worker; lowest latency).
    #[arg(long)]
    busy_poll: bool,
    /// Most tracked connections and templates.
    #[arg(long, default_value_t = 1 << 20)]
    max_conns: usize,
    /// Real-server slots.
    #[arg(long, default_value_t = 4096)]
    max_dests: usize,
    /// Any TCP segment but a RST may create a connection (IPVS sloppy_tcp).
    #[arg(long)]
    sloppy_tcp: bool,
    /// File holding the connection-sync secret (at least 16 bytes), shared
    /// by the directors; needed by `xvsadm --start-daemon`.
    #[arg(long, value_name = "FILE")]
    sync_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g.
    /// 127.0.0.1:9800.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// Keep every capability after set-up (by default all but
    /// CAP_NET_ADMIN, CAP_BPF and CAP_NET_RAW are dropped).
    #[arg(long)]
    keep_privileges: bool,
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
struct CoreList(Vec<usize>);

/// `2-5,8` -> [2, 3, 4, 5, 8].
fn parse_cores(s: &str) -> Result<CoreList, String> {
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

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("xvsd: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let opts = Options {
        ifaces: args.ifaces.clone(),
        cores: args.cores.clone().map(|c| c.0).unwrap_or_default(),
        config: args.config.clone(),
        socket: args.socket.clone(),
        socket_group: args.socket_group,
        xdp_mode: match args.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Driver,
            XdpMode::Skb => AttachMode::Skb,
        },
        bind_mode: match args.bind {
            Bind::Auto => BindMode::Auto,
            Bind::Copy => BindMode::Copy,
            Bind::ZeroCopy => BindMode::ZeroCopy,
        },
        ring_size: args.ring_size,
        worker: WorkerConfig {
            batch: usize::from(args.batch),
            busy_poll: args.busy_poll,
            ..WorkerConfig::default()
        },
        max_conns: args.max_conns,
        max_dests: args.max_dests,
        sloppy_tcp: args.sloppy_tcp,
        sync_key_file: args.sync_key_file,
        metrics: args.metrics,
        keep_privileges: args.keep_privileges,
    };
    let mut daemon = match Daemon::start(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xvsd: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "xvsd: serving {} with {} worker(s), {} AF_XDP, control socket {}",
        args.ifaces.join(", "),
        daemon.workers(),
        if daemon.zerocopy {
            "zero-copy"
        } else {
            "copy-mode"
        },
        args.socket.display(),
    );
    daemon.run_until(&stop, Duration::from_millis(50));
    eprintln!("xvsd: stopping");
    for line in daemon.shutdown() {
        eprintln!("xvsd: {line}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

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
        Args::command().debug_assert();
    }
}
