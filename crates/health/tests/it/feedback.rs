//! The feedback agent against a local HTTP load endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel;
use xvs_health::TargetKey;
use xvs_health::feedback::{
    AgentAdmin, FeedbackAgent, FeedbackConfig, FeedbackTarget, WeightChange, poll,
};

use crate::fixtures::{HttpServer, PATIENCE, Reply, closed_tcp_port, eventually};

fn feedback_target(addr: std::net::SocketAddr, weight: u32) -> FeedbackTarget {
    FeedbackTarget {
        key: TargetKey {
            service: "svc".into(),
            addr,
        },
        weight,
        port: None,
        path: "/load".into(),
        host: None,
    }
}

#[test]
fn poll_once() {
    let server = HttpServer::new(200, "drain 40% # deploying\n");
    let reply = poll(&feedback_target(server.addr, 10), Duration::from_secs(5)).unwrap();
    assert_eq!(
        (reply.capacity, reply.admin),
        (Some(40), Some(AgentAdmin::Drain))
    );
    assert_eq!(reply.comment, "deploying");
    assert!(
        server
            .last_request()
            .unwrap()
            .starts_with("GET /load HTTP/1.1\r\n")
    );

    server.set(Reply::Normal {
        status: 503,
        body: b"50%".to_vec(),
    });
    let err = poll(&feedback_target(server.addr, 10), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err, "status 503");
    server.set(Reply::Normal {
        status: 200,
        body: b"<html>busy</html>".to_vec(),
    });
    let err = poll(&feedback_target(server.addr, 10), Duration::from_secs(5)).unwrap_err();
    assert!(err.contains("no known word"), "{err}");
    server.set(Reply::Endless);
    let err = poll(&feedback_target(server.addr, 10), Duration::from_secs(5)).unwrap_err();
    assert_eq!(err, "body larger than 1024 bytes");
}

#[test]
fn agent_moves_weights_and_keeps_them_when_unreachable() {
    let server = HttpServer::new(200, "50%\n");
    let dead = closed_tcp_port();
    let (tx, rx) = channel::unbounded::<WeightChange>();
    let agent = FeedbackAgent::start(Arc::new(tx), FeedbackConfig::default()).unwrap();
    agent.configure(vec![
        feedback_target(server.addr, 100),
        feedback_target(dead, 100),
    ]);

    // New targets are polled at once: one bounded step toward 50.
    let c = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!((c.key.addr, c.weight), (server.addr, 80));
    assert!(c.detail.contains("capacity 50%"), "{}", c.detail);

    // The unreachable one keeps its weight and says why.
    eventually("the dead endpoint polled", || {
        agent
            .status()
            .iter()
            .any(|s| s.key.addr == dead && s.last == "connect refused")
    });
    let st = agent.status();
    assert_eq!(st.iter().find(|s| s.key.addr == dead).unwrap().weight, 100);
    assert_eq!(
        st.iter()
            .find(|s| s.key.addr == server.addr)
            .unwrap()
            .weight,
        80
    );
    assert!(rx.try_recv().is_err(), "nothing else within an interval");

    // configure() with the same targets changes nothing and polls nothing.
    let hits = server.hits();
    agent.configure(vec![
        feedback_target(server.addr, 100),
        feedback_target(dead, 100),
    ]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.hits(), hits);

    let stop = Instant::now();
    agent.stop();
    assert!(
        stop.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        stop.elapsed()
    );
}

#[test]
fn stop_is_prompt_during_a_hung_poll() {
    let server = HttpServer::new(200, "50%");
    server.set_delay(Duration::from_secs(30));
    let config = FeedbackConfig {
        timeout_ms: 10_000,
        ..FeedbackConfig::default()
    };
    let agent = FeedbackAgent::start(Arc::new(|_c: WeightChange| {}), config).unwrap();
    agent.configure(vec![feedback_target(server.addr, 100)]);
    eventually("the poll in progress", || server.hits() >= 1);
    let stop = Instant::now();
    agent.stop();
    assert!(
        stop.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        stop.elapsed()
    );
}
