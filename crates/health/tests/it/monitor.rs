//! The monitor as a whole: configure() keeps, drops, adds and changes
//! targets; alpha; start-time spread; a pool that grows past hung
//! servers; a prompt stop.

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use xvs_health::{Check, Monitor, Target, TargetKey, Timing};

use crate::fixtures::{
    Blackhole, HttpServer, Recorder, closed_tcp_port, eventually, fast, live_in_group, target,
};

fn key(t: &Target) -> TargetKey {
    t.key.clone()
}

#[test]
fn configure_keeps_unchanged_and_drops_removed() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let good = target(
        live.local_addr().unwrap(),
        Check::Tcp { port: None },
        fast(),
    );
    let bad = target(closed_tcp_port(), Check::Tcp { port: None }, fast());
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 2);
    monitor.configure(vec![good.clone(), bad.clone()]);
    let t = rec.wait(1);
    assert_eq!((t[0].key.clone(), t[0].up), (key(&bad), false));

    // Same list again: state, counters and schedule are kept.
    let before = monitor.status();
    monitor.configure(vec![bad.clone(), good.clone()]);
    let after = monitor.status();
    assert_eq!(after.len(), 2);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((&b.key, b.up), (&a.key, a.up));
        assert!(a.total_ok >= b.total_ok && a.total_failed >= b.total_failed);
    }
    let failed = after
        .iter()
        .find(|s| s.key == key(&bad))
        .unwrap()
        .total_failed;
    eventually("checks go on", || {
        monitor
            .status()
            .iter()
            .any(|s| s.key == key(&bad) && s.total_failed > failed + 2)
    });
    assert_eq!(rec.all().len(), 1, "nothing new: {:?}", rec.all());

    // Drop the bad one: it is no longer checked or reported.
    monitor.configure(vec![good.clone()]);
    let st = monitor.status();
    assert_eq!(
        st.iter().map(|s| s.key.clone()).collect::<Vec<_>>(),
        [key(&good)]
    );
    let ok = st[0].total_ok;
    eventually("good checked", || monitor.status()[0].total_ok >= ok + 3);
    assert_eq!(rec.all().len(), 1);

    // Add it back: a new target starts up, and falls again.
    monitor.configure(vec![good.clone(), bad.clone()]);
    let s = monitor
        .status()
        .into_iter()
        .find(|s| s.key == key(&bad))
        .unwrap();
    assert!(s.up);
    assert!(s.total_failed <= 1, "counters restarted: {s:?}");
    let t = rec.wait(2);
    assert_eq!((t[1].key.clone(), t[1].up), (key(&bad), false));
    monitor.stop();
}

#[test]
fn changed_check_keeps_state_without_transition() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 1);
    let mut t = target(closed_tcp_port(), Check::Tcp { port: None }, fast());
    monitor.configure(vec![t.clone()]);
    rec.wait(1);

    // Point the check at a live port: still down, no transition, then up
    // after `rise` successes.
    t.check = Check::Tcp {
        port: Some(live_port),
    };
    t.timing.rise = 3;
    monitor.configure(vec![t.clone()]);
    let s = monitor.status().remove(0);
    assert!(!s.up);
    assert_eq!(s.consecutive_failed, 0, "the failure run restarted");
    assert_eq!(s.check, format!("tcp:port={live_port}"));
    let all = rec.wait(2);
    assert!(all[1].up);
    assert!(monitor.status()[0].total_ok >= 3);
    monitor.stop();
}

#[test]
fn alpha_starts_down() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let alpha = Timing {
        alpha: true,
        rise: 5,
        ..fast()
    };
    let up = target(live.local_addr().unwrap(), Check::Tcp { port: None }, alpha);
    let down = target(closed_tcp_port(), Check::Tcp { port: None }, alpha);
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 2);
    monitor.configure(vec![up.clone(), down.clone()]);
    // It started down: the first success brings it up, whatever `rise`.
    let t = rec.wait(1);
    assert_eq!((t[0].key.clone(), t[0].up), (key(&up), true));
    eventually("the dead one checked a few times", || {
        monitor
            .status()
            .iter()
            .any(|s| s.key == key(&down) && s.total_failed >= 4)
    });
    assert_eq!(rec.all().len(), 1, "a dead alpha target reports nothing");
    monitor.stop();
}

#[test]
fn first_checks_are_spread() {
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = live.local_addr().unwrap();
    // Ten targets on a 60 s interval: the first is due now, the next at 6 s.
    let targets: Vec<Target> = (0..10)
        .map(|i| Target {
            key: TargetKey {
                service: format!("svc{i}"),
                addr,
            },
            check: Check::Tcp { port: None },
            timing: Timing {
                interval_ms: 60_000,
                ..fast()
            },
        })
        .collect();
    let monitor = Monitor::start(Recorder::default().sink(), 4);
    monitor.configure(targets);
    let checked = || {
        monitor
            .status()
            .iter()
            .filter(|s| s.total_ok + s.total_failed > 0)
            .count()
    };
    eventually("the first check", || checked() >= 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(checked(), 1);
    monitor.stop();
}

#[test]
fn pool_grows_past_hung_servers() {
    let hung = HttpServer::new(200, "ok");
    hung.set_delay(Duration::from_secs(30));
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = Timing {
        timeout_ms: 5000,
        ..fast()
    };
    let mut targets: Vec<Target> = (0..6)
        .map(|i| Target {
            key: TargetKey {
                service: format!("hung{i}"),
                addr: hung.addr,
            },
            check: Check::http("/"),
            timing: slow,
        })
        .collect();
    // Last in order, so due last: with a single worker and no growth it
    // would wait 5 s behind each hung check.
    targets.push(target(
        live.local_addr().unwrap(),
        Check::Tcp { port: None },
        fast(),
    ));
    let monitor = Monitor::start(Recorder::default().sink(), 1);
    let start = Instant::now();
    monitor.configure(targets);
    eventually("the live target checked", || {
        monitor
            .status()
            .iter()
            .any(|s| s.key.service == "svc" && s.total_ok >= 1)
    });
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    eventually("all hung checks in progress", || hung.hits() >= 6);

    // Stop is prompt with six checks blocked on the hung server.
    let stop = Instant::now();
    monitor.stop();
    assert!(
        stop.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        stop.elapsed()
    );
}

#[test]
fn stop_is_prompt_and_kills_commands() {
    let pidfile = std::env::temp_dir().join(format!("xvs-health-{}-stop", std::process::id()));
    let _ = fs::remove_file(&pidfile);
    let command = format!("echo $$ > '{}'; sleep 30", pidfile.display());
    let rec = Recorder::default();
    let monitor = Monitor::start(rec.sink(), 2);
    monitor.configure(vec![target(
        "127.0.0.1:80".parse().unwrap(),
        Check::Misc {
            command,
            dynamic: false,
        },
        Timing {
            timeout_ms: 60_000,
            interval_ms: 60_000,
            ..fast()
        },
    )]);
    eventually("the command started", || {
        fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stop = Instant::now();
    monitor.stop();
    assert!(
        stop.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        stop.elapsed()
    );
    // Killed with its group, `sleep` included.
    eventually("the group to die", || live_in_group(pid) == 0);
    assert_eq!(rec.all(), [], "a cancelled check reports nothing");
    let _ = fs::remove_file(&pidfile);
}

#[test]
fn stop_of_an_idle_monitor_is_prompt() {
    let monitor = Monitor::start(Recorder::default().sink(), 4);
    monitor.configure(vec![target(
        closed_tcp_port(),
        Check::Tcp { port: None },
        Timing {
            interval_ms: 3_600_000,
            ..fast()
        },
    )]);
    eventually("first check", || monitor.status()[0].total_failed >= 1);
    let stop = Instant::now();
    monitor.stop();
    assert!(
        stop.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        stop.elapsed()
    );
}

#[test]
fn status_reports_details_and_age() {
    let hole = Blackhole::new();
    let live = TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor = Monitor::start(Recorder::default().sink(), 2);
    let hung = target(hole.addr, Check::Tcp { port: None }, fast());
    let good = target(
        live.local_addr().unwrap(),
        Check::Tcp { port: Some(1) },
        fast(),
    );
    monitor.configure(vec![hung.clone(), good.clone()]);
    // The connect to the black hole takes the whole timeout.
    let s = monitor
        .status()
        .into_iter()
        .find(|s| s.key == key(&hung))
        .unwrap();
    assert_eq!(
        (s.check.as_str(), s.last_detail.as_str()),
        ("tcp", "not checked yet")
    );
    eventually("checked", || {
        monitor
            .status()
            .iter()
            .any(|s| s.key == key(&hung) && s.last_detail.starts_with("timeout"))
    });
    let s = monitor
        .status()
        .into_iter()
        .find(|s| s.key == key(&good))
        .unwrap();
    assert_eq!(s.check, "tcp:port=1");
    std::thread::sleep(Duration::from_millis(50));
    assert!(monitor.status().iter().all(|s| s.since_change_ms >= 50));
    monitor.stop();
}

#[test]
fn a_panicking_sink_does_not_stop_checks() {
    let sink = |t: xvs_health::Transition| panic!("sink bug on {t:?} (expected by the test)");
    let monitor = Monitor::start(std::sync::Arc::new(sink), 1);
    monitor.configure(vec![target(
        closed_tcp_port(),
        Check::Tcp { port: None },
        fast(),
    )]);
    eventually("down", || !monitor.status()[0].up);
    let failed = monitor.status()[0].total_failed;
    eventually("checks go on", || {
        monitor.status()[0].total_failed >= failed + 3
    });
    monitor.stop();
}
