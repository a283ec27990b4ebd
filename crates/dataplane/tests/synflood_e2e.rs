//! SYN flood through the live daemon: xvsd (NAT, `--max-conns 65536`) on
//! the lab's director gets TCP SYNs to the VIP from random spoofed
//! addresses and ports, as fast as the lab's AF_XDP generator sends them
//! from the client namespace, while 50 keep-alive HTTP connections
//! established before the flood keep exchanging requests through the VIP.
//!
//! What must hold: the connection table never holds more than its bound
//! (it fills, then new SYNs are dropped and counted as `table_full`); the
//! daemon's resident memory stays flat once the table is full (the table
//! allocates its slabs as it fills, so the comparison starts there); not
//! one request on the live connections fails (they hit their existing
//! entries; when the flood exceeds what the director can receive, their
//! segments are lost with the flood's in the receive ring and TCP
//! retransmits them, so an answer may take seconds, which is measured);
//! the daemon still answers `xvsadm` afterwards. The flood lasts until the
//! table is full and 3 s more (at most 15 s).
//!
//! The figures (offered and received rates, drops by reason and where,
//! occupancy, memory, live requests, new connections tried during the
//! flood) are printed; docs/hardening.md has them.
//!
//! Needs root and the lab's tools: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use xvs_lab::traffic::{GenConfig, Generator, SynFlood};
use xvs_lab::{Family, Mode, Topology};

const HTTP: u16 = 80;
const MAX_CONNS: u64 = 65_536;
/// Live keep-alive connections.
const LIVE: usize = 50;
/// The flood lasts until the table is full and this long after (so that
/// memory is watched while full new SYNs keep coming) ...
const FLOOD_WHEN_FULL: Duration = Duration::from_secs(3);
/// ... or at most this long.
const FLOOD_MAX: Duration = Duration::from_secs(15);
/// The flood's source addresses: 100.64.0.0/10 (shared address space,
/// nobody in the lab).
const FLOOD_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 10);
/// Most the resident set may grow once the table is full.
const RSS_SLACK_KIB: u64 = 1024;
/// A live request fails when it gets no answer in this time. The flood
/// overloads the director's receive ring, which drops established flows'
/// segments as blindly as the flood's: TCP retransmits them with backoff,
/// so an answer can take up to about twice the flood's length; past that
/// something broke.
const LIVE_TIMEOUT: Duration = Duration::from_secs(25);

fn config(lab: &Topology) -> String {
    let vip = vip_str(lab, Family::V4);
    let mut c = format!("-A -t {vip}:{HTTP} -s rr\n");
    for i in 0..lab.real_servers().len() {
        c += &format!(
            "-a -t {vip}:{HTTP} -r {}:{HTTP} -m -w 1\n",
            rs_addr(lab, i, Family::V4)
        );
    }
    c
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// An interface's counters (`ethtool -S`) by name.
fn nic_stats(ns: &xvs_lab::Netns, dev: &str) -> BTreeMap<String, u64> {
    ns.exec(&["ethtool", "-S", dev])
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

fn sys_stat(ns: &xvs_lab::Netns, dev: &str, name: &str) -> u64 {
    ns.exec(&["cat", &format!("/sys/class/net/{dev}/statistics/{name}")])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Keep-alive connections asking in turn until stopped: per connection
/// the times of its answers, and every failure.
struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<LiveResult>>,
}

struct LiveResult {
    times: Vec<Vec<Instant>>,
    failures: Vec<String>,
    /// Slowest answer (from the round's start).
    worst: Duration,
    /// Every answer's time (from the round's start).
    latencies: Vec<Duration>,
}

impl Live {
    fn start(lab: &Topology, n: usize) -> Live {
        let vip = lab.vip_addr(Family::V4, HTTP);
        let mut conns: Vec<xvs_lab::HttpConn> = (0..n)
            .map(|_| {
                lab.client()
                    .http_connect(vip, Duration::from_secs(5))
                    .unwrap()
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut times = vec![Vec::new(); conns.len()];
            let mut failures = Vec::new();
            let mut worst = Duration::ZERO;
            let mut latencies = Vec::new();
            while !s.load(Ordering::Relaxed) {
                // All at once, then every answer against one deadline.
                let sent = Instant::now();
                for c in conns.iter_mut() {
                    if let Err(e) = c.send_get("/") {
                        failures.push(format!("send: {e}"));
                    }
                }
                for (i, c) in conns.iter_mut().enumerate() {
                    match c.read(LIVE_TIMEOUT) {
                        Ok(r) if r.status == 200 && r.text().starts_with("rs") => {
                            let took = sent.elapsed();
                            times[i].push(Instant::now());
                            latencies.push(took);
                            worst = worst.max(took);
                        }
                        Ok(r) => failures.push(format!("conn {i}: status {}", r.status)),
                        Err(e) => failures.push(format!("conn {i}: {e}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            LiveResult {
                times,
                failures,
                worst,
                latencies,
            }
        });
        Live {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> LiveResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn syn_flood_keeps_the_table_bounded_and_live_flows_working() {
    let t0 = Instant::now();
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(HTTP, 5353).unwrap();
    let max = MAX_CONNS.to_string();
    let d = Xvsd::start_on(
        lab.director(),
        "synflood",
        &config(&lab),
        &["--max-conns", &max],
    );
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let pid = d.pid().unwrap();

    let live = Live::start(&lab, LIVE);
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(pid);
    let before = d.counters();
    let (cli_drop0, dir0) = (
        sys_stat(lab.client(), "eth0", "tx_dropped"),
        nic_stats(lab.director(), "eth0"),
    );

    let flood = Generator::start(
        lab.client(),
        GenConfig {
            core: Some(1),
            ..GenConfig::default()
        },
        SynFlood::new(
            lab.client().mac().octets(),
            lab.director_outside().mac.octets(),
            FLOOD_NET,
            match lab.vip(Family::V4) {
                std::net::IpAddr::V4(a) => a,
                std::net::IpAddr::V6(_) => unreachable!(),
            },
            HTTP,
            0x5eed,
        ),
    )
    .unwrap();
    let start = Instant::now();
    // Every 250 ms: occupancy and memory; once full, new connections.
    let mut max_entries = 0;
    let mut rss_full = None;
    let mut rss_max_after_full = 0;
    let mut full_at = None;
    let mut new_conns = Vec::new();
    while start.elapsed() < full_at.map_or(FLOOD_MAX, |t| t + FLOOD_WHEN_FULL) {
        std::thread::sleep(Duration::from_millis(250));
        let c = d.counters();
        let rss = rss_kib(pid);
        max_entries = max_entries.max(c.conns.entries);
        if c.conns.refused_full > before.conns.refused_full {
            full_at.get_or_insert(start.elapsed());
            // The first sample after the table filled: the baseline.
            rss_full.get_or_insert(rss);
            rss_max_after_full = rss_max_after_full.max(rss);
        }
        let full_for = full_at.map(|t| start.elapsed() - t);
        if new_conns.is_empty() && full_for.is_some_and(|t| t > FLOOD_WHEN_FULL / 3) {
            for _ in 0..3 {
                let t = Instant::now();
                let r = lab
                    .client()
                    .http_get_timeout(vip, "/", Duration::from_secs(1));
                new_conns.push((r.is_ok(), t.elapsed()));
            }
        }
    }
    let report = flood.stop().unwrap();
    let during = start..Instant::now();
    // Let the queues drain, then read everything.
    std::thread::sleep(Duration::from_millis(500));
    let after = d.counters();
    let rss_end = rss_kib(pid);
    let cli_drop = sys_stat(lab.client(), "eth0", "tx_dropped") - cli_drop0;
    let dir1 = nic_stats(lab.director(), "eth0");
    let dir: BTreeMap<&str, u64> = dir1
        .iter()
        .filter(|(k, _)| k.starts_with("rx_queue_0"))
        .map(|(k, v)| (k.as_str(), v - dir0.get(k).copied().unwrap_or(0)))
        .collect();
    // A new connection right after the flood: the table is still full of
    // its SYN_RECV entries.
    let after_flood = lab
        .client()
        .http_get_timeout(vip, "/", Duration::from_secs(1))
        .is_ok();
    std::thread::sleep(Duration::from_millis(1500));
    let live = live.finish();

    // The figures.
    let secs = report.elapsed.as_secs_f64();
    let dropped: BTreeMap<&str, u64> = after
        .dropped
        .iter()
        .map(|(k, v)| (k.as_str(), v - before.dropped.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let passed: BTreeMap<&str, u64> = after
        .passed
        .iter()
        .map(|(k, v)| (k.as_str(), v - before.passed.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let created = after.conns.created - before.conns.created;
    let during_n: Vec<usize> = live
        .times
        .iter()
        .map(|t| t.iter().filter(|i| during.contains(i)).count())
        .collect();
    let after_n: Vec<usize> = live
        .times
        .iter()
        .map(|t| t.iter().filter(|i| **i > during.end).count())
        .collect();
    let slow = |d: Duration| live.latencies.iter().filter(|l| **l > d).count();
    println!(
        "SYN flood: {:.1} s, generator {} sent, {} completed: {:.0} pps offered",
        secs,
        report.sent,
        report.completed,
        report.pps()
    );
    println!("client veth TX drops (director's queue full): {cli_drop}");
    println!("director eth0 (veth, XDP): {dir:?}");
    println!(
        "xvsd: rx {} ({:.0} pps), tx {}, dropped {dropped:?}, passed {passed:?}, io {:?}",
        after.rx - before.rx,
        (after.rx - before.rx) as f64 / secs,
        after.tx - before.tx,
        after.io
    );
    println!(
        "table: capacity {}, max entries seen {max_entries}, entries at the end {}, \
         created {created}, refused full {}, full after {full_at:?}",
        after.conns.capacity,
        after.conns.entries,
        after.conns.refused_full - before.conns.refused_full
    );
    println!(
        "xvsd VmRSS: {rss_idle} KiB before, {rss_full:?} KiB when full, \
         {rss_max_after_full} KiB max after, {rss_end} KiB at the end"
    );
    println!(
        "live: {LIVE} connections, {} answers, {} failures ({LIVE_TIMEOUT:?} timeout), \
         answers per connection during the flood {}..{}, after {}..{}; \
         slower than 1 s: {}, than 5 s: {}; slowest {:?}",
        live.latencies.len(),
        live.failures.len(),
        during_n.iter().min().unwrap_or(&0),
        during_n.iter().max().unwrap_or(&0),
        after_n.iter().min().unwrap_or(&0),
        after_n.iter().max().unwrap_or(&0),
        slow(Duration::from_secs(1)),
        slow(Duration::from_secs(5)),
        live.worst
    );
    println!(
        "new connections (1 s timeout): during the flood {new_conns:?}, right after it: {}",
        if after_flood { "answered" } else { "no answer" }
    );

    // The daemon is up and answers.
    let listing = d.cli_ok("-L -n");
    assert!(listing.contains(&vip_str(&lab, Family::V4)), "{listing}");

    // The bound held, and was reached.
    assert_eq!(after.conns.capacity, MAX_CONNS);
    assert!(max_entries <= MAX_CONNS && after.conns.entries <= MAX_CONNS);
    assert!(
        dropped.get("table_full").copied().unwrap_or(0) > 0,
        "the flood did not fill the table: {dropped:?}"
    );
    assert_eq!(
        dropped.get("table_full").copied().unwrap_or(0),
        after.conns.refused_full - before.conns.refused_full,
        "every refusal is a table_full drop"
    );
    // Memory is flat once full.
    let base = rss_full.expect("table full");
    assert!(
        rss_max_after_full.max(rss_end) <= base + RSS_SLACK_KIB,
        "RSS grew after the table filled: {base} -> {rss_max_after_full} / {rss_end} KiB"
    );
    // The live connections never failed and kept answering.
    assert!(
        live.failures.is_empty(),
        "live connections failed: {:?}",
        live.failures
    );
    // (During the flood an answer can take the flood's length: see
    // LIVE_TIMEOUT. After it, all answer again.)
    assert!(
        after_n.iter().all(|n| *n > 0),
        "a live connection got no answer after the flood: {after_n:?}"
    );
    d.stop(&lab);
    println!("synflood_e2e: {:.1} s", t0.elapsed().as_secs_f64());
}

/// How long new clients are refused after a flood filled the table: until
/// its half-open entries time out. That was IPVS's 60 s SYN_RECV timeout;
/// a table 7/8 full now shortens them to 10 s (the entries already there
/// included), so new clients are served again about 10 s after the flood.
/// The bound asserted is loose (30 s, half the old lockout): the figure is
/// printed for docs/hardening.md.
#[test]
fn syn_flood_lockout_ends_with_the_short_syn_recv_timeout() {
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(HTTP, 5353).unwrap();
    let max = MAX_CONNS.to_string();
    let d = Xvsd::start_on(
        lab.director(),
        "lockout",
        &config(&lab),
        &["--max-conns", &max],
    );
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let std::net::IpAddr::V4(vip4) = lab.vip(Family::V4) else {
        unreachable!()
    };
    let flood = Generator::start(
        lab.client(),
        GenConfig {
            core: Some(1),
            ..GenConfig::default()
        },
        SynFlood::new(
            lab.client().mac().octets(),
            lab.director_outside().mac.octets(),
            FLOOD_NET,
            vip4,
            HTTP,
            7,
        ),
    )
    .unwrap();
    let start = Instant::now();
    while d.counters().conns.refused_full == 0 {
        assert!(start.elapsed() < FLOOD_MAX, "the table did not fill");
        std::thread::sleep(Duration::from_millis(50));
    }
    let full_after = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let report = flood.stop().unwrap();
    println!(
        "flood: {:.1} s at {:.0} pps, table full after {full_after:.1?}",
        report.elapsed.as_secs_f64(),
        report.pps()
    );
    let stopped = Instant::now();
    let served = loop {
        let c = d.counters();
        let ok = lab
            .client()
            .http_get_timeout(vip, "/", Duration::from_secs(1))
            .is_ok();
        println!(
            "{:>5.1} s after the flood: entries {}, expired {}, new connection {}",
            stopped.elapsed().as_secs_f64(),
            c.conns.entries,
            c.conns.expired,
            if ok { "served" } else { "refused" }
        );
        if ok {
            break stopped.elapsed();
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "new clients still refused 30 s after the flood"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    println!("new clients refused for {served:.1?} after the flood");
    d.stop(&lab);
}
