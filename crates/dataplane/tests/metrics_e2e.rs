//! Prometheus metrics end to end: xvsd with `--metrics` in the NAT lab,
//! real traffic through it, then a scrape from the director's namespace
//! checked against what was sent; and the capabilities the running daemon
//! kept.
//!
//! Needs root and the lab's tools: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::time::Duration;

use common::*;
use xvs_lab::{Family, Mode};

#[test]
fn metrics_count_what_went_through() {
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(80, 5353).unwrap();
    let vip = vip_str(&lab, Family::V4);
    let mut config = format!("-A -t {vip}:80 -s rr\n-A -u {vip}:5353 -s rr\n");
    for i in 0..2 {
        let r = rs_addr(&lab, i, Family::V4);
        config +=
            &format!("-a -t {vip}:80 -r {r}:80 -m -w 1\n-a -u {vip}:5353 -r {r}:5353 -m -w 1\n");
    }
    let d = Xvsd::start_on(lab.director(), "metrics", &config, &["--metrics", METRICS]);
    let web = lab.vip_addr(Family::V4, 80);
    first_answer(&lab, web);
    for _ in 0..5 {
        get(&lab, web);
    }
    let dns = lab.vip_addr(Family::V4, 5353);
    for _ in 0..2 {
        lab.client()
            .udp_request(dns, b"hi", Duration::from_secs(2))
            .unwrap();
    }

    let (status, body) = scrape(&lab, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let m = samples(&body);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{body}"))
    };
    let svc = format!("service=\"TCP {vip}:80\"");
    assert_eq!(get("xvs_up"), 1.0);
    // first_answer may have retried while the MACs resolved: at least 6.
    let conns = get(&format!("xvs_service_connections_total{{{svc}}}"));
    assert!(conns >= 6.0, "{conns}");
    let per_server: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("xvs_real_server_connections_total{{{svc}")))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        per_server, conns,
        "the servers' connections add up to the service's"
    );
    assert!(
        get(&format!(
            "xvs_service_packets_total{{{svc},direction=\"out\"}}"
        )) > 0.0,
        "NAT replies"
    );
    let udp = format!("service=\"UDP {vip}:5353\"");
    assert_eq!(get(&format!("xvs_service_connections_total{{{udp}}}")), 2.0);
    let rx = get("xvs_worker_frames_total{worker=\"0\",outcome=\"rx\"}");
    let tx = get("xvs_worker_frames_total{worker=\"0\",outcome=\"tx\"}");
    assert!(tx > 0.0 && rx >= tx, "rx {rx} tx {tx}");
    assert!(get("xvs_conntrack_entries") >= 8.0);
    assert_eq!(get("xvs_conntrack_capacity"), 1_048_576.0);
    assert!(m.keys().any(|k| k.starts_with("xvs_drops_total{reason=")));
    let r1 = rs_addr(&lab, 0, Family::V4);
    assert_eq!(
        get(&format!(
            "xvs_real_server_weight{{{svc},server=\"{r1}:80\"}}"
        )),
        1.0
    );

    // After set-up xvsd holds CAP_NET_ADMIN (12), CAP_NET_RAW (13) and
    // CAP_BPF (39) only, in its bounding set too: nothing it starts can
    // regain more.
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
    let caps = |k: &str| {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim();
        u64::from_str_radix(v, 16).unwrap()
    };
    let kept = (1u64 << 12) | (1 << 13) | (1 << 39);
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(caps(set), kept, "{set} {:x}", caps(set));
    }
    assert_eq!(caps("CapInh:"), 0);
    assert!(d.log_text().contains("capabilities kept after set-up"));

    // Anything else is refused, and the endpoint keeps serving.
    assert_eq!(
        scrape(&lab, "GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        scrape(&lab, "BREW /pot\r\n\r\n").0,
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        scrape(&lab, "GET /metrics HTTP/1.0\r\n\r\n").0,
        "HTTP/1.1 200 OK"
    );
    d.stop(&lab);
}
