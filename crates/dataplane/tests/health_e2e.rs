//! Health checks end to end: xvsd on the lab's director checks real
//! servers in their namespaces with every checker (HTTP, TCP, UDP, MISC),
//! and what the checks decide is seen through `xvsadm` and in where new
//! connections go: a failed server is removed (or kept at weight 0 with
//! `inhibit`), a slow one times out, a wrong status fails, a recovered one
//! comes back, a service without quorum gets its sorry server.
//!
//! Needs root and the lab's tools: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use xvs_lab::{EchoConfig, EchoServer, Family, Mode, Topology};

const WAIT: Duration = Duration::from_secs(15);
/// Fast checks for the test: every 200 ms, one result changes the state.
const TIMING: &str = "interval=200ms,timeout=400ms,rise=1,fall=1";

/// The line of real server `rs` in an `xvsadm -L -n` listing, if listed.
fn line_of<'a>(listing: &'a str, rs: &str) -> Option<&'a str> {
    listing.lines().find(|l| l.contains(&format!("-> {rs}")))
}

/// Names of the real servers answering `n` GETs of `/` on `vip`.
fn answering(lab: &Topology, vip: SocketAddr, n: usize) -> BTreeSet<String> {
    (0..n).map(|_| get(lab, vip)).collect()
}

/// A TCP listener on `port` of every address of `ns` that accepts and
/// never answers (a hung server); stops when `stop` is set.
fn hung_server(ns: &xvs_lab::Netns, port: u16, stop: Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_thread("hung-server", move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        let mut held = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .unwrap();
    rx.recv().unwrap();
}

/// A load endpoint on `port` of `ns` answering every request with `body`
/// (an HAProxy-style agent reply such as `50%`); stops when `stop` is set.
fn load_endpoint(ns: &xvs_lab::Netns, port: u16, body: &'static str, stop: Arc<AtomicBool>) {
    use std::io::{Read as _, Write as _};
    let (tx, rx) = std::sync::mpsc::channel();
    ns.spawn_thread("load-endpoint", move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            if let Ok((mut s, _)) = l.accept() {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .unwrap();
    rx.recv().unwrap();
}

#[test]
fn checks_remove_inhibit_and_restore_real_servers() {
    let Some(lab) = lab(Mode::Dr, 3) else { return };
    let servers = lab.start_echo(80, 5353).unwrap();
    let vip = vip_str(&lab, Family::V4);
    let rs: Vec<String> = (0..3).map(|i| rs_addr(&lab, i, Family::V4)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    hung_server(lab.real_servers()[0].ns(), 8082, Arc::clone(&stop));
    load_endpoint(lab.real_servers()[1].ns(), 9100, "50%", Arc::clone(&stop));
    let config = format!(
        "\
-A -t {vip}:80 -s rr
-a -t {vip}:80 -r {r1}:80 -g -w 1 --check http:path=/ --check-timing {TIMING}
-a -t {vip}:80 -r {r2}:80 -g -w 1 --check http:path=/missing --check-timing {TIMING}
-a -t {vip}:80 -r {r3}:80 -g -w 1 --check tcp:port=8081 --check-timing {TIMING}
-A -u {vip}:5353 -s rr --health inhibit
-a -u {vip}:5353 -r {r1}:5353 -g -w 2 --check udp:payload=6869,require-reply --check-timing {TIMING}
-a -u {vip}:5353 -r {r2}:5353 -g -w 2 --check 'misc:cmd=exit 1' --check-timing {TIMING}
-a -u {vip}:5353 -r {r3}:5353 -g -w 2 --check udp:port=9999,require-reply --check-timing {TIMING}
-A -t {vip}:81 -s rr --health sorry={r3}:81
-a -t {vip}:81 -r {r1}:81 -g -w 1 --check http:port=8082 --check-timing {TIMING}
-A -t {vip}:82 -s wrr
-a -t {vip}:82 -r {r1}:82 -g -w 100
-a -t {vip}:82 -r {r2}:82 -g -w 100 --feedback port=9100,path=/load
",
        r1 = rs[0],
        r2 = rs[1],
        r3 = rs[2],
    );
    let d = Xvsd::start(&lab, &config);

    // HTTP 404 and a refused TCP port: removed from VIP:80; HTTP 200 stays.
    let web = wait_for("VIP:80 to keep only rs1", WAIT, || {
        let l = d.cli_ok(&format!("-L -n -t {vip}:80"));
        (line_of(&l, &rs[1]).is_none() && line_of(&l, &rs[2]).is_none()).then_some(l)
    });
    assert!(line_of(&web, &rs[0]).is_some(), "{web}");
    let checks = d.cli_ok("-L -n --checks");
    println!("{checks}");
    let row = |r: &str, port: u16| -> String {
        checks
            .lines()
            .filter(|l| l.contains(&format!("-> {r}:{port} ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(row(&rs[0], 80).contains(" up "), "{checks}");
    assert!(row(&rs[1], 80).contains("removed"), "{checks}");
    assert!(
        row(&rs[1], 80).contains("404"),
        "wrong status named: {checks}"
    );
    assert!(row(&rs[2], 80).contains("removed"), "{checks}");
    // Traffic follows: only rs1 answers.
    let vip80 = lab.vip_addr(Family::V4, 80);
    first_answer(&lab, vip80);
    assert_eq!(
        answering(&lab, vip80, 6),
        BTreeSet::from(["rs1".to_owned()])
    );

    // UDP with inhibit: the failing MISC check and the unreachable UDP
    // port leave their servers at weight 0; the UDP echo stays at 2.
    let dns = wait_for("VIP:5353 inhibited servers", WAIT, || {
        let l = d.cli_ok(&format!("-L -n -u {vip}:5353"));
        let w0 = |r: &str| line_of(&l, r).is_some_and(|x| x.split_whitespace().nth(3) == Some("0"));
        (w0(&rs[1]) && w0(&rs[2])).then_some(l)
    });
    let w = |r: &str| line_of(&dns, r).and_then(|x| x.split_whitespace().nth(3).map(str::to_owned));
    assert_eq!(w(&rs[0]).as_deref(), Some("2"), "{dns}");

    // A hung server times out; the service has no quorum left, so the
    // sorry server takes it.
    let sorry = wait_for("the sorry server of VIP:81", WAIT, || {
        let l = d.cli_ok(&format!("-L -n -t {vip}:81"));
        line_of(&l, &format!("{}:81", rs[2])).map(|_| l.clone())
    });
    assert!(line_of(&sorry, &rs[0]).is_none(), "{sorry}");
    let checks = d.cli_ok("-L -n --checks");
    assert!(
        checks.contains("timeout"),
        "the hung server's detail: {checks}"
    );
    assert!(checks.contains("sorry"), "{checks}");

    // Dynamic feedback: rs2's agent says 50% of its capacity is free; its
    // weight moves from 100 toward 50, a bounded step per poll (the LVS
    // paper's cube-root law; the first poll comes at once); rs1, without
    // an agent, keeps 100.
    let fed = wait_for("rs2's weight to follow its agent", WAIT, || {
        let l = d.cli_ok(&format!("-L -n -t {vip}:82"));
        let w = line_of(&l, &rs[1])?
            .split_whitespace()
            .nth(3)?
            .parse::<u32>()
            .ok()?;
        (w < 100).then_some((w, l))
    });
    assert!((50..100).contains(&fed.0), "{}", fed.1);
    let w1 = line_of(&fed.1, &rs[0]).and_then(|x| x.split_whitespace().nth(3));
    assert_eq!(w1, Some("100"), "{}", fed.1);

    // Recovery: something listens on rs3:8081; rs3 comes back to VIP:80
    // and takes new connections again.
    let _rs3_8081 = EchoServer::start_in(
        lab.real_servers()[2].ns(),
        &EchoConfig {
            name: "rs3-check".into(),
            tcp: vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 8081)],
            udp: Vec::new(),
        },
    )
    .unwrap();
    wait_for("rs3 back in VIP:80", WAIT, || {
        line_of(&d.cli_ok(&format!("-L -n -t {vip}:80")), &rs[2]).map(|_| ())
    });
    assert_eq!(
        answering(&lab, vip80, 6),
        BTreeSet::from(["rs1".to_owned(), "rs3".to_owned()])
    );

    // rs1 goes down (its HTTP server stops): removed; rs3 serves alone.
    let mut servers = servers;
    drop(servers.remove(0));
    wait_for("rs1 out of VIP:80", WAIT, || {
        line_of(&d.cli_ok(&format!("-L -n -t {vip}:80")), &rs[0])
            .is_none()
            .then_some(())
    });
    assert_eq!(
        answering(&lab, vip80, 4),
        BTreeSet::from(["rs3".to_owned()])
    );

    // The configuration is what was configured, not what the checks did.
    let saved = d.cli_ok("-S -n");
    assert_eq!(saved.matches("--check ").count(), 7, "{saved}");
    assert!(saved.contains(&format!(
        "-r {}:82 -g -w 100 --feedback port=9100,path=/load",
        rs[1]
    )));
    assert!(saved.contains(&format!(
        "-r {}:80 -g -w 1 --check http:path=/missing",
        rs[1]
    )));
    stop.store(true, Ordering::Relaxed);
    d.stop(&lab);
}

/// NAT: the director's checks reach the real servers on the inside arm and
/// their answers come back to the director's kernel, not to the data plane
/// (the steering program passes a real server's packets addressed to the
/// director itself), while client traffic is still NAT-ed.
#[test]
fn nat_checks_reach_the_real_servers() {
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _servers = lab.start_echo(80, 0).unwrap();
    let vip = vip_str(&lab, Family::V4);
    let rs: Vec<String> = (0..2).map(|i| rs_addr(&lab, i, Family::V4)).collect();
    let config = format!(
        "\
-A -t {vip}:80 -s rr
-a -t {vip}:80 -r {r1}:80 -m -w 1 --check http:path=/ --check-timing {TIMING}
-a -t {vip}:80 -r {r2}:80 -m -w 1 --check http:path=/missing --check-timing {TIMING}
",
        r1 = rs[0],
        r2 = rs[1],
    );
    let d = Xvsd::start(&lab, &config);
    wait_for("rs2 removed", WAIT, || {
        line_of(&d.cli_ok(&format!("-L -n -t {vip}:80")), &rs[1])
            .is_none()
            .then_some(())
    });
    // Checks keep passing once the steering program runs (the first ones
    // may have run before it was attached): five in a row, none failed.
    let h = wait_for("five good checks of rs1", WAIT, || {
        let st = d.state();
        let h = st.services[0]
            .dests
            .iter()
            .find(|x| x.opts.addr.to_string() == rs[0])?
            .health
            .clone()?;
        (h.total_ok >= 5 || h.total_failed > 0).then_some(h)
    });
    assert_eq!(
        (h.up, h.total_failed),
        (true, 0),
        "rs1's answers reach the director's kernel: {h:?}"
    );
    let vip80 = lab.vip_addr(Family::V4, 80);
    first_answer(&lab, vip80);
    assert_eq!(
        answering(&lab, vip80, 4),
        BTreeSet::from(["rs1".to_owned()])
    );
    d.stop(&lab);
}
