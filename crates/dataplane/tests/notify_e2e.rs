//! xvsd under a service manager: systemd's readiness protocol
//! (`sd_notify(3)`), which the unit in `deploy/xvsd.service` relies on
//! (`Type=notify`). The test plays systemd: it listens on a datagram
//! socket, starts xvsd in a lab namespace with `NOTIFY_SOCKET` naming it,
//! and checks that `READY=1` comes only once the director serves (the
//! control socket answers at the first try, the steering program is
//! attached), then `STOPPING=1` on SIGTERM.
//!
//! Needs root, `ip`, `ethtool`: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;
use xvs_ctl::client::Client;
use xvs_ctl::proto::{Request, Response};
use xvs_lab::Mode;

/// Datagrams from `sock` until one holds the line `want` (returned with
/// the ones before it); panics after `within` or when xvsd exits first.
fn wait_line(sock: &UnixDatagram, d: &mut Xvsd, want: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.lines().any(|l| l == want);
                got.push(msg);
                if done {
                    return got;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
        if let Some(status) = d.try_wait() {
            // What it sent before dying is still queued.
            while let Ok(n) = sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                if got.last().is_some_and(|m| m.lines().any(|l| l == want)) {
                    return got;
                }
            }
            panic!(
                "xvsd exited ({status}) before {want}: {got:?}\n{}",
                d.log_text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no {want} within {within:?}: {got:?}"
        );
    }
}

#[test]
fn ready_once_serving_and_stopping_on_sigterm() {
    let Some(lab) = lab(Mode::Dr, 1) else { return };
    let dir = TempDir::new("notify");
    let path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut d = Xvsd::spawn_on(
        lab.director(),
        "notify",
        "-A -t 192.0.2.50:80 -s rr\n",
        &[],
        &[("NOTIFY_SOCKET", path.as_os_str())],
    );

    let ready = wait_line(&sock, &mut d, "READY=1", Duration::from_secs(15));
    // One try, no retry: when READY=1 arrives, the director answers.
    let ping = Client::connect(&d.socket).and_then(|mut c| c.call(&Request::Ping));
    assert!(
        matches!(ping, Ok(Response::Ok)),
        "READY=1 before the control socket answered: {ping:?}"
    );
    let link = lab.director().ip(&["link", "show", "eth0"]).unwrap();
    assert!(
        link.contains("xdp"),
        "READY=1 before the steering program: {link}"
    );
    assert_eq!(ready.len(), 1, "READY=1 is the first message: {ready:?}");
    assert!(
        ready[0].contains("STATUS=serving eth0 with 1 worker(s)"),
        "{ready:?}"
    );

    // SIGTERM: STOPPING=1 is sent before the workers stop; stop() checks
    // the clean exit, the datagram waits in the socket's queue.
    d.stop(&lab);
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a message after SIGTERM");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "{msg}");
}
