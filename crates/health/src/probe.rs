//! One check of one real server: the four checkers.
//!
//! [`probe`] runs a [`Check`] once and blocks until it passes, fails or
//! times out; the [`Monitor`](crate::Monitor) runs it on its workers and
//! applies rise and fall. Each checker keeps to the check's timeout as a
//! whole (connect, request and reply together; a MISC command's run time)
//! and reads at most [`MAX_BODY`] bytes of an HTTP body.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use md5::{Digest, Md5};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::http::{self, BodyReader, Get};
use crate::net::{Budget, Fail, SLICE, connect_tcp, io_fail};
use crate::spec::{Check, hex};

/// Largest HTTP body read to compute a digest, bytes; a larger body fails
/// the check.
pub const MAX_BODY: usize = 1 << 20;

/// How often a running MISC command is polled for its exit.
const CHILD_POLL: Duration = Duration::from_millis(5);

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the check passed.
    pub ok: bool,
    /// The weight a `misc_dynamic` command asked for (exit code - 2), on
    /// success; `None` means the configured weight.
    pub weight: Option<u32>,
    /// What happened, for logs and status: `connected`, `status 200`,
    /// `connect refused`, `status 500 (expected 200)`, `timeout after 3000
    /// ms (connect)`, `exit 1`, ...
    pub detail: String,
}

impl Outcome {
    fn pass(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            weight: None,
            detail: detail.into(),
        }
    }

    fn fail(detail: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            weight: None,
            detail: detail.into(),
        }
    }
}

/// Runs `check` once against the real server at `addr` (its port is the
/// real server's; the check's `port` overrides it) and waits at most
/// `timeout` for the verdict.
///
/// ```no_run
/// use std::time::Duration;
/// use xvs_health::{Check, probe};
///
/// let out = probe(&Check::http("/health"), "10.0.0.2:80".parse()?, Duration::from_secs(2));
/// println!("{}: {}", if out.ok { "up" } else { "down" }, out.detail);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn probe(check: &Check, addr: SocketAddr, timeout: Duration) -> Outcome {
    let never = AtomicBool::new(false);
    run(check, addr, timeout, &never).unwrap_or_else(|| Outcome::fail("cancelled"))
}

/// As [`probe`], but gives up (returning `None`) soon after `cancel` is
/// set.
pub(crate) fn run(
    check: &Check,
    addr: SocketAddr,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Option<Outcome> {
    if let Err(e) = check.validate() {
        return Some(Outcome::fail(format!("invalid check: {e}")));
    }
    let target = SocketAddr::new(addr.ip(), check.port_for(addr.port()));
    let budget = Budget::new(timeout, cancel);
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let result = match check {
        Check::Tcp { .. } => connect_tcp(target, &budget).map(|_| Outcome::pass("connected")),
        Check::Http {
            path,
            status,
            digest,
            host,
            ..
        } => http_check(
            target,
            path,
            *status,
            digest.as_deref(),
            host.as_deref(),
            &budget,
        ),
        Check::Udp {
            payload,
            expect,
            require_reply,
            ..
        } => udp_check(target, payload, expect.as_deref(), *require_reply, &budget),
        Check::Misc { command, dynamic } => misc_check(command, *dynamic, addr, &budget),
    };
    match result {
        Ok(outcome) => Some(outcome),
        Err(Fail::Cancelled) => None,
        Err(fail) => Some(Outcome::fail(fail.detail(timeout_ms))),
    }
}

fn http_check(
    addr: SocketAddr,
    path: &str,
    want: u16,
    digest: Option<&str>,
    host: Option<&str>,
    budget: &Budget<'_>,
) -> Result<Outcome, Fail> {
    let req = Get { addr, path, host };
    let mut md5 = Md5::new();
    let mut feed = |bytes: &[u8]| md5.update(bytes);
    let body = digest.map(|_| BodyReader {
        limit: MAX_BODY,
        sink: &mut feed,
    });
    let status = http::get(&req, budget, body)?;
    if status != want {
        return Ok(Outcome::fail(format!("status {status} (expected {want})")));
    }
    if let Some(want_digest) = digest {
        let got = hex(&md5.finalize());
        if !got.eq_ignore_ascii_case(want_digest) {
            return Ok(Outcome::fail(format!("digest mismatch: body MD5 is {got}")));
        }
        return Ok(Outcome::pass(format!("status {status}, digest matches")));
    }
    Ok(Outcome::pass(format!("status {status}")))
}

fn udp_check(
    addr: SocketAddr,
    payload: &[u8],
    expect: Option<&[u8]>,
    require_reply: bool,
    budget: &Budget<'_>,
) -> Result<Outcome, Fail> {
    let unreachable = || Fail::Failed("port unreachable".to_owned());
    let udp_io = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused => unreachable(),
        _ => io_fail(&e),
    };
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).map_err(udp_io)?;
    sock.connect(addr).map_err(udp_io)?;
    sock.send(payload).map_err(udp_io)?;
    let mut buf = vec![0u8; 65_536];
    loop {
        let slice = match budget.slice("waiting for a reply") {
            Ok(slice) => slice,
            Err(Fail::Timeout(_)) if !require_reply => {
                return Ok(Outcome::pass("no reply and no port unreachable"));
            }
            Err(e) => return Err(e),
        };
        sock.set_read_timeout(Some(slice)).map_err(udp_io)?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                let reply = &buf[..n];
                return Ok(match expect {
                    Some(e) if !reply.starts_with(e) => Outcome::fail(format!(
                        "reply does not match: {} byte(s) starting {}",
                        n,
                        hex(&reply[..n.min(16)])
                    )),
                    _ => Outcome::pass(format!("reply of {n} byte(s)")),
                });
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(udp_io(e)),
        }
    }
}

fn misc_check(
    command: &str,
    dynamic: bool,
    addr: SocketAddr,
    budget: &Budget<'_>,
) -> Result<Outcome, Fail> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("XVS_RS_ADDR", addr.ip().to_string())
        .env("XVS_RS_PORT", addr.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Fail::Failed(format!("cannot run /bin/sh: {e}")))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(exit_outcome(status, dynamic)),
            Ok(None) => {}
            Err(e) => {
                kill_group(&mut child);
                return Err(Fail::Failed(format!("waiting for the command: {e}")));
            }
        }
        match budget.slice("command killed") {
            Ok(slice) => thread::sleep(slice.min(CHILD_POLL).min(SLICE)),
            Err(fail) => {
                kill_group(&mut child);
                return Err(fail);
            }
        }
    }
}

/// Kills the command and everything it started (its process group), then
/// reaps it. The group id is the child's pid, still ours until reaped.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// keepalived's MISC_CHECK exit codes: 0 passes; with `dynamic`, 1 fails
/// and 2..=255 passes with weight `code - 2`; otherwise any other code
/// fails.
fn exit_outcome(status: ExitStatus, dynamic: bool) -> Outcome {
    match (status.code(), dynamic) {
        (Some(0), _) => Outcome::pass("exit 0"),
        (Some(code @ 2..=255), true) => {
            let weight = code as u32 - 2;
            Outcome {
                ok: true,
                weight: Some(weight),
                detail: format!("exit {code} (weight {weight})"),
            }
        }
        (Some(code), _) => Outcome::fail(format!("exit {code}")),
        (None, _) => match status.signal() {
            Some(sig) => Outcome::fail(format!("killed by signal {sig}")),
            None => Outcome::fail("ended without an exit code"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let st = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(exit_outcome(st(0), false), Outcome::pass("exit 0"));
        assert_eq!(exit_outcome(st(0), true), Outcome::pass("exit 0"));
        assert_eq!(exit_outcome(st(1), true), Outcome::fail("exit 1"));
        assert_eq!(exit_outcome(st(7), false), Outcome::fail("exit 7"));
        let dynamic = exit_outcome(st(7), true);
        assert_eq!((dynamic.ok, dynamic.weight), (true, Some(5)));
        assert_eq!(exit_outcome(st(2), true).weight, Some(0));
        assert_eq!(exit_outcome(st(255), true).weight, Some(253));
        assert_eq!(
            exit_outcome(ExitStatus::from_raw(9), true),
            Outcome::fail("killed by signal 9")
        );
    }

    #[test]
    fn invalid_check_fails_without_io() {
        let out = probe(
            &Check::http("no-slash"),
            "127.0.0.1:1".parse().unwrap(),
            SLICE,
        );
        assert!(!out.ok);
        assert!(out.detail.starts_with("invalid check: "), "{}", out.detail);
    }
}
