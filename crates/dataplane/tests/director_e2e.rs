//! xvsd end to end: the lab's namespaces (client, director, real servers on
//! veth), the real daemon binary on the director, real TCP and UDP from the
//! client through it, in DR, NAT and TUN, IPv4 and IPv6.
//!
//! Real servers are set up as `deploy/` documents: DR holds the VIP on lo
//! with arp_ignore=1/arp_announce=2; NAT routes replies through the
//! director; TUN decapsulates with the lab's XDP program, since this kernel
//! has no `ipip` module.
//!
//! Needs root, `ip`, `ethtool`: without them the tests print why and pass,
//! except under `CI=true`, where they fail.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xvs_lab::{Family, Mode, Proc, Topology};

const XVSD: &str = env!("CARGO_BIN_EXE_xvsd");
const HTTP: u16 = 80;
const UDP: u16 = 5353;

/// xvsd running on the lab's director with `config`; killed on drop.
struct Xvsd {
    proc: Option<Proc>,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("xvs-e2e-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Xvsd {
    fn start(lab: &Topology, config: &str) -> Xvsd {
        let dir = TempDir::new(lab.mode().as_str());
        let conf = dir.0.join("xvsd.conf");
        std::fs::File::create(&conf)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .unwrap();
        let sock = dir.0.join("xvsd.sock");
        let mut argv = vec![XVSD.to_owned()];
        for ifc in lab.director().ifaces() {
            argv.push("--iface".into());
            argv.push(ifc.dev.clone());
        }
        argv.extend([
            "--config".into(),
            conf.display().to_string(),
            "--socket".into(),
            sock.display().to_string(),
            "--ring-size".into(),
            "512".into(),
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let proc = lab.director().spawn(&argv).unwrap();
        Xvsd {
            proc: Some(proc),
            _dir: dir,
        }
    }

    /// Stops with SIGTERM and checks the exit was clean: status 0, no XDP
    /// program left on the director's interfaces.
    fn stop(mut self, lab: &Topology) {
        let status = self
            .proc
            .take()
            .unwrap()
            .stop(Duration::from_secs(5))
            .unwrap();
        assert!(status.success(), "xvsd exited with {status}");
        for ifc in lab.director().ifaces() {
            let link = lab.director().ip(&["link", "show", &ifc.dev]).unwrap();
            assert!(!link.contains("xdp"), "XDP left on {}: {link}", ifc.dev);
        }
    }
}

/// GETs `/` from the VIP until it answers (the director resolves the real
/// servers' MACs first), then returns the answering server's name.
fn first_answer(lab: &Topology, vip: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match lab
            .client()
            .http_get_timeout(vip, "/", Duration::from_millis(500))
        {
            Ok(r) => return r.text().trim().to_owned(),
            Err(e) if Instant::now() > deadline => panic!("no answer from {vip}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn get(lab: &Topology, vip: SocketAddr) -> String {
    lab.client()
        .http_get(vip, "/")
        .unwrap_or_else(|e| panic!("GET {vip}: {e}"))
        .text()
        .trim()
        .to_owned()
}

fn lab(mode: Mode, n: usize) -> Option<Topology> {
    if !xvs_lab::ready("xvsd end-to-end", &["ethtool"]) {
        return None;
    }
    xvs_lab::or_skip("lab", Topology::builder(mode).real_servers(n).build())
}

fn rs_addr(lab: &Topology, i: usize, f: Family) -> String {
    match lab.real_servers()[i].addr(f) {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn vip_str(lab: &Topology, f: Family) -> String {
    match lab.vip(f) {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `-A`/`-a` lines: TCP and UDP services on both VIPs, rr, every real
/// server with `method`.
fn config(lab: &Topology, method: &str) -> String {
    let mut c = String::new();
    for f in [Family::V4, Family::V6] {
        let vip = vip_str(lab, f);
        for (p, port) in [("-t", HTTP), ("-u", UDP)] {
            c += &format!("-A {p} {vip}:{port} -s rr\n");
            for i in 0..lab.real_servers().len() {
                c += &format!(
                    "-a {p} {vip}:{port} -r {}:{port} {method} -w 1\n",
                    rs_addr(lab, i, f)
                );
            }
        }
    }
    c
}

/// rr alternates real servers in order, over both families; UDP answers
/// come from the VIP.
fn round_robin(lab: &Topology) {
    let n = lab.real_servers().len();
    for f in [Family::V4, Family::V6] {
        let vip = lab.vip_addr(f, HTTP);
        let first = first_answer(lab, vip);
        let names: Vec<String> = (0..2 * n).map(|_| get(lab, vip)).collect();
        let start: usize = first[2..].parse().unwrap();
        for (k, name) in names.iter().enumerate() {
            assert_eq!(
                *name,
                format!("rs{}", (start + k) % n + 1),
                "{f:?}: {names:?}"
            );
        }
        big_transfer(lab, vip);
        let udp = lab.vip_addr(f, UDP);
        let (answer, from) = lab
            .client()
            .udp_request(udp, b"ping", Duration::from_secs(2))
            .unwrap();
        assert_eq!(from, udp, "UDP answer from the VIP");
        assert!(answer.starts_with(b"rs") && answer.ends_with(b"ping"));
    }
}

/// A 4 MiB answer through the director arrives whole and in order.
fn big_transfer(lab: &Topology, vip: SocketAddr) {
    const LEN: usize = 4 << 20;
    let r = lab
        .client()
        .http_get_timeout(vip, &format!("/bytes/{LEN}"), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("GET /bytes from {vip}: {e}"));
    assert_eq!(r.body.len(), LEN, "{vip}");
    assert_eq!(xvs_lab::pattern::first_mismatch(0, &r.body), None, "{vip}");
}

#[test]
fn dr_round_robin_v4_v6() {
    let Some(lab) = lab(Mode::Dr, 3) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab, "-g"));
    round_robin(&lab);
    let link = lab.director().ip(&["link", "show", "eth0"]).unwrap();
    assert!(link.contains("xdp"), "steering program attached: {link}");
    d.stop(&lab);
}

#[test]
fn nat_round_robin_v4_v6() {
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab, "-m"));
    round_robin(&lab);
    d.stop(&lab);
}

#[test]
fn tun_round_robin_v4_v6() {
    let Some(lab) = lab(Mode::Tun, 2) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab, "-i"));
    round_robin(&lab);
    d.stop(&lab);
}

/// Two queues per interface: two workers, each with its own sockets, share
/// the connection table; every connection completes whichever queue its
/// packets arrive on.
#[test]
fn nat_two_queues_two_workers() {
    if !xvs_lab::ready("xvsd end-to-end", &["ethtool"]) {
        return;
    }
    let Some(lab) = xvs_lab::or_skip(
        "lab",
        Topology::builder(Mode::Nat)
            .real_servers(2)
            .queues(2)
            .build(),
    ) else {
        return;
    };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab, "-m"));
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(get(&lab, vip));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    big_transfer(&lab, vip);
    d.stop(&lab);
}
