//! Each checker against real servers on 127.0.0.1, through the monitor:
//! up stays up, down after `fall` failures, up again after `rise`
//! successes, one transition per change; and hostile replies through
//! `probe`.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xvs_health::{Check, Monitor, Timing, probe};

use crate::fixtures::{
    Blackhole, HttpServer, Recorder, Reply, UdpMode, UdpServer, closed_tcp_port, closed_udp_port,
    eventually, fast, live_in_group, target,
};

/// Drives one target up → down → up: `break_it` must make the check fail
/// with a detail containing `down`, `fix_it` make it pass again with a
/// detail containing `up`. Asserts exactly one transition per change, at
/// least `fall` failures before the down and `rise` successes before the
/// up, and no transition while the state holds.
fn cycle<G>(
    addr: SocketAddr,
    check: Check,
    timing: Timing,
    break_it: impl FnOnce(),
    fix_it: impl FnOnce() -> G,
    down: &str,
    up: &str,
) -> G {
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 2);
    monitor.configure(vec![target(addr, check, timing)]);
    let status = || monitor.status().remove(0);

    eventually("two checks passed", || status().total_ok >= 2);
    assert!(status().up);
    assert_eq!(rec.all(), [], "no transition while up");

    let failed_before = status().total_failed;
    let broken_at = Instant::now();
    break_it();
    let t = rec.wait(1);
    assert!(!t[0].up, "{t:?}");
    assert!(
        t[0].detail.contains(down),
        "down detail {:?} lacks {down:?}",
        t[0].detail
    );
    let s = status();
    assert!(!s.up);
    assert!(
        s.total_failed - failed_before >= u64::from(timing.fall),
        "{s:?}"
    );

    let ok_before = s.total_ok;
    let fixed_at = Instant::now();
    let guard = fix_it();
    let t = rec.wait(2);
    let times = rec.times();
    assert!(broken_at <= times[0] && times[0] <= fixed_at && fixed_at <= times[1]);
    assert!(t[1].up, "{t:?}");
    assert!(
        t[1].detail.contains(up),
        "up detail {:?} lacks {up:?}",
        t[1].detail
    );
    let s = status();
    assert!(s.total_ok - ok_before >= u64::from(timing.rise), "{s:?}");

    let ok_now = s.total_ok;
    eventually("three more checks", || status().total_ok >= ok_now + 3);
    assert_eq!(
        rec.all().len(),
        2,
        "one transition per change: {:?}",
        rec.all()
    );
    monitor.stop();
    guard
}

/// A single fall: the target starts up and must go down with `detail`.
fn goes_down(addr: SocketAddr, check: Check, timing: Timing, detail: &str) {
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 2);
    monitor.configure(vec![target(addr, check, timing)]);
    let t = rec.wait(1);
    assert!(!t[0].up);
    assert!(
        t[0].detail.contains(detail),
        "detail {:?} lacks {detail:?}",
        t[0].detail
    );
    assert!(monitor.status()[0].total_failed >= u64::from(timing.fall));
    monitor.stop();
}

#[test]
fn tcp_refused_then_recovered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let timing = Timing { rise: 3, ..fast() };
    let _listener = cycle(
        addr,
        Check::Tcp { port: None },
        timing,
        move || drop(listener),
        move || TcpListener::bind(addr).unwrap(),
        "connect refused",
        "connected",
    );
}

#[test]
fn tcp_timeout() {
    let hole = Blackhole::new();
    goes_down(
        hole.addr,
        Check::Tcp { port: None },
        fast(),
        "timeout after 300 ms (connect)",
    );
}

#[test]
fn tcp_port_override() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = live.local_addr().unwrap().port();
    let t = Duration::from_secs(1);
    assert!(probe(&Check::Tcp { port: Some(port) }, closed_tcp_port(), t).ok);
    assert_eq!(
        probe(&Check::Tcp { port: None }, closed_tcp_port(), t).detail,
        "connect refused"
    );
}

#[test]
fn http_wrong_status_then_recovered() {
    let server = HttpServer::new(200, "ok");
    cycle(
        server.addr,
        Check::http("/health"),
        fast(),
        || {
            server.set(Reply::Normal {
                status: 500,
                body: b"oops".to_vec(),
            })
        },
        || {
            server.set(Reply::Normal {
                status: 200,
                body: b"ok".to_vec(),
            })
        },
        "status 500 (expected 200)",
        "status 200",
    );
    let req = server.last_request().unwrap();
    assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
    assert!(
        req.contains(&format!("\r\nHost: {}\r\n", server.addr)),
        "{req}"
    );
}

#[test]
fn http_wrong_digest_then_recovered() {
    let server = HttpServer::new(200, "hello");
    let check = Check::Http {
        port: None,
        path: "/".into(),
        status: 200,
        digest: Some("5d41402abc4b2a76b9719d911017c592".into()), // md5("hello")
        host: Some("www.example.com".into()),
    };
    cycle(
        server.addr,
        check,
        fast(),
        || {
            server.set(Reply::Normal {
                status: 200,
                body: b"hellO".to_vec(),
            })
        },
        || {
            server.set(Reply::Normal {
                status: 200,
                body: b"hello".to_vec(),
            })
        },
        "digest mismatch",
        "digest matches",
    );
    assert!(
        server
            .last_request()
            .unwrap()
            .contains("\r\nHost: www.example.com\r\n")
    );
}

#[test]
fn http_slow_then_recovered() {
    let server = HttpServer::new(200, "ok");
    cycle(
        server.addr,
        Check::http("/"),
        fast(),
        || server.set_delay(Duration::from_secs(2)),
        || server.set_delay(Duration::ZERO),
        "timeout after 300 ms (waiting for the response)",
        "status 200",
    );
}

#[test]
fn http_refused() {
    goes_down(
        closed_tcp_port(),
        Check::http("/"),
        fast(),
        "connect refused",
    );
}

#[test]
fn http_hostile_replies() {
    let digest = Check::Http {
        port: None,
        path: "/".into(),
        status: 200,
        digest: Some("5d41402abc4b2a76b9719d911017c592".into()),
        host: None,
    };
    let plain = Check::http("/");
    let huge_head = [&b"HTTP/1.1 200 OK\r\nX-Big: "[..], &vec![b'a'; 100_000]].concat();
    let mut garbage: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    garbage.extend_from_slice(b"\n\n");
    let cases: Vec<(Reply, &Check, bool, &str)> = vec![
        (Reply::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()), &plain, false, "bad status line 'SSH-2.0"),
        (Reply::Raw(huge_head), &plain, false, "response head larger than 16384 bytes"),
        (Reply::Raw(garbage), &plain, false, "bad status line"),
        (Reply::Endless, &digest, false, "body larger than 1048576 bytes"),
        (Reply::Endless, &plain, true, "status 200"),
        (Reply::Close, &plain, false, "connection closed without a response"),
        (
            Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".to_vec()),
            &digest,
            false,
            "connection closed in the body",
        ),
        (
            Reply::Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\n\r\n".to_vec()),
            &digest,
            true,
            "digest matches",
        ),
        (
            Reply::Raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
            &digest,
            true,
            "digest matches",
        ),
        (
            Reply::Raw(b"HTTP/1.0 200 OK\n\nhello".to_vec()),
            &digest,
            true,
            "digest matches",
        ),
        (
            Reply::Raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()),
            &digest,
            false,
            "bad chunk size",
        ),
    ];
    let server = HttpServer::new(200, "");
    for (reply, check, ok, detail) in cases {
        server.set(reply.clone());
        let out = probe(check, server.addr, Duration::from_secs(5));
        assert_eq!(out.ok, ok, "{reply:?}: {out:?}");
        assert!(
            out.detail.contains(detail),
            "{reply:?}: {:?} lacks {detail:?}",
            out.detail
        );
    }
}

#[test]
fn udp_silence_then_recovered() {
    let server = UdpServer::new(UdpMode::Echo);
    let check = Check::Udp {
        port: None,
        payload: b"ping".to_vec(),
        expect: Some(b"pi".to_vec()),
        require_reply: true,
    };
    cycle(
        server.addr,
        check,
        fast(),
        || server.set(UdpMode::Silent),
        || server.set(UdpMode::Echo),
        "timeout after 300 ms (waiting for a reply)",
        "reply of 4 byte(s)",
    );
}

#[test]
fn udp_port_unreachable() {
    let check = Check::Udp {
        port: None,
        payload: b"x".to_vec(),
        expect: None,
        require_reply: false,
    };
    goes_down(closed_udp_port(), check, fast(), "port unreachable");
}

#[test]
fn udp_replies() {
    let t = Duration::from_millis(300);
    let echo = UdpServer::new(UdpMode::Echo);
    let silent = UdpServer::new(UdpMode::Silent);
    let udp = |expect: Option<&[u8]>, require_reply| Check::Udp {
        port: None,
        payload: b"hello".to_vec(),
        expect: expect.map(<[u8]>::to_vec),
        require_reply,
    };
    let out = probe(&udp(Some(b"help"), false), echo.addr, t);
    assert!(
        !out.ok && out.detail.contains("reply does not match"),
        "{out:?}"
    );
    let out = probe(&udp(None, false), silent.addr, t);
    assert!(
        out.ok && out.detail == "no reply and no port unreachable",
        "{out:?}"
    );
    let out = probe(&udp(None, true), silent.addr, t);
    assert!(
        !out.ok && out.detail.starts_with("timeout after 300 ms"),
        "{out:?}"
    );
    let out = probe(&udp(None, true), closed_udp_port(), t);
    assert_eq!((out.ok, out.detail.as_str()), (false, "port unreachable"));
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("xvs-health-{}-{name}", std::process::id()))
}

#[test]
fn misc_exit_codes_then_recovered() {
    let flag = temp_path("broken");
    let _ = fs::remove_file(&flag);
    let command = format!("test ! -e '{}'", flag.display());
    cycle(
        "127.0.0.1:80".parse().unwrap(),
        Check::Misc {
            command,
            dynamic: false,
        },
        Timing {
            timeout_ms: 2000,
            ..fast()
        },
        || fs::write(&flag, "").unwrap(),
        || fs::remove_file(&flag).unwrap(),
        "exit 1",
        "exit 0",
    );
}

#[test]
fn misc_dynamic_weights() {
    let code = temp_path("code");
    fs::write(&code, "7").unwrap();
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 1);
    let command = format!("exit $(cat '{}')", code.display());
    let timing = Timing {
        timeout_ms: 2000,
        ..fast()
    };
    monitor.configure(vec![target(
        "127.0.0.1:80".parse().unwrap(),
        Check::Misc {
            command,
            dynamic: true,
        },
        timing,
    )]);
    let t = rec.wait(1);
    assert_eq!(
        (t[0].up, t[0].weight, t[0].detail.as_str()),
        (true, Some(5), "exit 7 (weight 5)")
    );
    fs::write(&code, "12").unwrap();
    let t = rec.wait(2);
    assert_eq!((t[1].up, t[1].weight), (true, Some(10)));
    fs::write(&code, "1").unwrap();
    let t = rec.wait(3);
    assert_eq!(
        (t[2].up, t[2].weight, t[2].detail.as_str()),
        (false, None, "exit 1")
    );
    fs::write(&code, "0").unwrap();
    let t = rec.wait(4);
    assert_eq!((t[3].up, t[3].weight), (true, None));
    let ok = monitor.status()[0].total_ok;
    eventually("more checks", || monitor.status()[0].total_ok >= ok + 3);
    assert_eq!(rec.all().len(), 4, "{:?}", rec.all());
    monitor.stop();
    let _ = fs::remove_file(&code);
}

#[test]
fn misc_timeout_kills_the_process_group() {
    let pidfile = temp_path("pid");
    let command = format!("echo $$ > '{}'; sleep 30; exit 0", pidfile.display());
    let out = probe(
        &Check::Misc {
            command,
            dynamic: false,
        },
        "127.0.0.1:80".parse().unwrap(),
        Duration::from_millis(300),
    );
    assert_eq!(
        (out.ok, out.detail.as_str()),
        (false, "timeout after 300 ms (command killed)")
    );
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The shell led its own group; nothing in it (sleep included) lives.
    eventually("the group to die", || live_in_group(pid) == 0);
    let _ = fs::remove_file(&pidfile);
}

#[test]
fn misc_environment() {
    let command = r#"test "$XVS_RS_ADDR" = 127.0.0.1 && test "$XVS_RS_PORT" = 4321"#.to_owned();
    let out = probe(
        &Check::Misc {
            command,
            dynamic: false,
        },
        "127.0.0.1:4321".parse().unwrap(),
        Duration::from_secs(5),
    );
    assert!(out.ok, "{out:?}");
    let out = probe(
        &Check::Misc {
            command: "kill -9 $$".into(),
            dynamic: false,
        },
        "127.0.0.1:1".parse().unwrap(),
        Duration::from_secs(5),
    );
    assert_eq!(out.detail, "killed by signal 9");
}
