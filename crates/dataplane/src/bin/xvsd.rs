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
//!
//! Under a service manager that sets `$NOTIFY_SOCKET` (systemd's
//! `Type=notify`), xvsd sends `READY=1` once it serves (the control socket
//! answers, the XDP program is attached, the workers run) and `STOPPING=1`
//! when a signal asks it to stop (`sd_notify(3)`); without the variable
//! nothing is sent.
//!
//! Exit status: 0 after a clean stop; 2 when the command line, the options
//! or the configuration file are wrong (starting again cannot help: the
//! systemd unit does not restart on 2); 1 when setting up failed (an
//! interface, the XDP program, a socket), which a restart may cure.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser as _;
use sd_notify::NotifyState;
use xvs_dataplane::cli::Args;
use xvs_dataplane::daemon::{Daemon, DaemonError};

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
            return match e {
                DaemonError::Usage(_) | DaemonError::Config { .. } => ExitCode::from(2),
                DaemonError::Setup { .. } => ExitCode::FAILURE,
            };
        }
    };
    let status = format!(
        "serving {} with {} worker(s), {} AF_XDP",
        args.ifaces.join(", "),
        daemon.workers(),
        if daemon.zerocopy {
            "zero-copy"
        } else {
            "copy-mode"
        },
    );
    eprintln!("xvsd: {status}, control socket {}", args.socket.display());
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    daemon.run_until(&stop, Duration::from_millis(50));
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    eprintln!("xvsd: stopping");
    for line in daemon.shutdown() {
        eprintln!("xvsd: {line}");
    }
    ExitCode::SUCCESS
}

/// Tells the service manager, if any (`$NOTIFY_SOCKET`). A failure is
/// logged, not fatal: the director serves either way, and systemd reports
/// a unit that never got `READY=1` when its start times out.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        eprintln!("xvsd: cannot notify the service manager: {e}");
    }
}
