//! `xvs-lab`: builds an LVS lab by hand, for demos and benchmarks.
//!
//! ```text
//! xvs-lab up --mode dr --rs 2 [--queues 2] [--tcp 80] [--udp 5353]
//!            [--directors N] [--router] [--baseline forward|nft] [--env-file lab.env]
//! xvs-lab demo [--xvsd PATH] [--xvsadm PATH]
//! xvs-lab cleanup
//! ```
//!
//! `up` builds the namespaces, starts an echo server on every real server,
//! prints the lab as `KEY=value` lines (namespace names, devices,
//! addresses, MACs; also written to `--env-file`), then a line `ready`, and
//! holds the lab until SIGINT, SIGTERM or SIGHUP, when it removes
//! everything. `demo` runs the README's demo (see [`demo`]). `cleanup`
//! removes namespaces left by killed lab processes.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use nix::sys::signal::{SigSet, Signal};
use xvs_lab::{LabError, Mode, Topology};

/// Network-namespace labs for xvs (needs root).
#[derive(Debug, Parser)]
#[command(name = "xvs-lab", version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Baseline {
    /// The director's kernel forwards (client reaches real servers directly).
    Forward,
    /// nftables DNAT VIP:port -> real servers, round robin.
    Nft,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab and hold it until a signal.
    Up {
        /// dr, nat or tun.
        #[arg(long, default_value = "dr")]
        mode: Mode,
        /// Number of real servers.
        #[arg(long, default_value_t = 2)]
        rs: usize,
        /// Queues of the director's veths.
        #[arg(long)]
        queues: Option<u16>,
        /// Directors on the segment (dr and tun).
        #[arg(long, default_value_t = 1)]
        directors: usize,
        /// A router in front of the segment with an ECMP route to the VIP
        /// over every director (dr and tun).
        #[arg(long)]
        router: bool,
        /// TCP (HTTP) port of the echo servers (0: none).
        #[arg(long, default_value_t = 80)]
        tcp: u16,
        /// UDP port of the echo servers (0: none).
        #[arg(long, default_value_t = 5353)]
        udp: u16,
        /// Let the director's kernel do the job (NAT mode only).
        #[arg(long)]
        baseline: Option<Baseline>,
        /// Also write the KEY=value lines to this file.
        #[arg(long)]
        env_file: Option<std::path::PathBuf>,
    },
    /// The demo: a DR lab and a NAT lab, xvsd on each director with an
    /// embedded configuration, real requests, xvsadm listings.
    Demo {
        /// The xvsd binary (default: next to this program).
        #[arg(long)]
        xvsd: Option<std::path::PathBuf>,
        /// The xvsadm binary (default: next to this program).
        #[arg(long)]
        xvsadm: Option<std::path::PathBuf>,
    },
    /// Remove namespaces left behind by dead lab processes.
    Cleanup,
}

mod demo;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xvs-lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), LabError> {
    match args.command {
        Cmd::Demo { xvsd, xvsadm } => demo::run(xvsd, xvsadm),
        Cmd::Cleanup => {
            for name in xvs_lab::cleanup_stale()? {
                println!("removed {name}");
            }
            Ok(())
        }
        Cmd::Up {
            mode,
            rs,
            queues,
            directors,
            router,
            tcp,
            udp,
            baseline,
            env_file,
        } => {
            // Block the stop signals before any thread exists, so that every
            // thread inherits the mask and `wait` below receives them.
            let mut signals = SigSet::empty();
            for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                signals.add(s);
            }
            signals.thread_block()?;

            let mut builder = Topology::builder(mode)
                .real_servers(rs)
                .directors(directors)
                .router(router);
            if let Some(q) = queues {
                builder = builder.queues(q);
            }
            let lab = builder.build()?;
            let _echo = lab.start_echo(tcp, udp)?;
            match baseline {
                Some(Baseline::Forward) => lab.enable_kernel_forwarding()?,
                Some(Baseline::Nft) => {
                    let ports: Vec<u16> = [tcp, udp].into_iter().filter(|p| *p != 0).collect();
                    lab.enable_nft_dnat(&ports)?;
                }
                None => {}
            }
            let mut text = String::new();
            for (k, v) in lab.env() {
                text.push_str(&format!("{k}={v}\n"));
            }
            text.push_str(&format!("XVS_TCP_PORT={tcp}\nXVS_UDP_PORT={udp}\n"));
            if let Some(path) = env_file {
                std::fs::write(&path, &text)
                    .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}ready");
            let _ = out.flush();
            drop(out);
            let got = signals.wait()?;
            eprintln!("xvs-lab: {got:?}, removing the lab");
            Ok(())
        }
    }
}
