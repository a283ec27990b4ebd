//! `xvsd`: the xvs director daemon.
//!
//! ```text
//! xvsd --iface IF [--iface IF2 ...] [--cores LIST] [--socket PATH] [--config FILE]
//! ```
//!
//! Runs in the foreground, logs to stderr, exits cleanly on SIGTERM or
//! SIGINT (workers joined, XDP programs detached, socket file removed).
//! The command line is [`xvs_dataplane::cli`]; the work is
//! [`xvs_dataplane::daemon`].

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser as _;
use xvs_dataplane::cli::Args;
use xvs_dataplane::daemon::Daemon;

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("xvsd: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut daemon = match Daemon::start(&args.options()) {
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
