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

mod common;

use std::net::SocketAddr;

use std::time::Duration;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpStream;

use common::*;
use xvs_ctl::proto::{Request, Response};
use xvs_lab::{Family, Mode, Topology};

const HTTP: u16 = 80;
const UDP: u16 = 5353;

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

/// Runs `deploy/SCRIPT start ARGS` on every real server: the documented
/// set-up (the lab made the same one; the script must agree and succeed).
fn deploy_script(lab: &Topology, script: &str, args: &[String]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");
    for rs in lab.real_servers() {
        let out = rs
            .command("sh")
            .arg(format!("{path}{script}"))
            .arg("start")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script} on {}: {}",
            rs.role(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dr_round_robin_v4_v6() {
    let Some(lab) = lab(Mode::Dr, 3) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let vips = [Family::V4, Family::V6].map(|f| lab.vip(f).to_string());
    deploy_script(&lab, "realserver-dr.sh", &vips);
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
    let inside = &lab.director().ifaces()[1];
    let gws = [Family::V4, Family::V6].map(|f| inside.addr(f).to_string());
    deploy_script(&lab, "realserver-nat.sh", &gws);
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

/// An HTTP/1.1 keep-alive connection from the client to the VIP: an
/// established flow that must survive changes to other real servers.
struct KeepAlive(BufReader<TcpStream>);

impl KeepAlive {
    fn open(lab: &Topology, vip: SocketAddr) -> KeepAlive {
        let s = lab
            .client()
            .run(move || TcpStream::connect_timeout(&vip, Duration::from_secs(3)))
            .unwrap()
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        KeepAlive(BufReader::new(s))
    }

    /// `GET /` on the connection: the answering server's name.
    fn get(&mut self) -> String {
        use std::io::Write as _;
        self.0
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
            .unwrap();
        let mut len = 0;
        loop {
            let mut line = String::new();
            self.0.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.0.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap().trim().to_owned()
    }
}

/// The seed's maintenance session under traffic, through the control
/// socket: weight 0 stops new connections while existing ones go on; a
/// deleted server's established flow finishes; an added one takes new
/// connections; no flow to another server notices. In DR the director
/// never sees a reply (OutPkts 0) and the counters add up.
#[test]
fn dr_runtime_changes_keep_established_flows() {
    let Some(lab) = lab(Mode::Dr, 3) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab, "-g"));
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let svc = format!("{}:{HTTP}", vip_str(&lab, Family::V4));
    let (rs2, rs3) = (rs_addr(&lab, 1, Family::V4), rs_addr(&lab, 2, Family::V4));

    // One established flow per real server.
    let mut flows: Vec<(String, KeepAlive)> = (0..3)
        .map(|_| {
            let mut k = KeepAlive::open(&lab, vip);
            (k.get(), k)
        })
        .collect();
    flows.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = flows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["rs1", "rs2", "rs3"]);
    let check_flows = |flows: &mut Vec<(String, KeepAlive)>| {
        for (name, k) in flows.iter_mut() {
            assert_eq!(k.get(), *name, "an established flow moved");
        }
    };

    // Quiesce rs2: no new connections; its flow goes on.
    d.xvsadm(&format!("-e -t {svc} -r {rs2} -w 0"));
    for _ in 0..6 {
        assert_ne!(get(&lab, vip), "rs2");
    }
    check_flows(&mut flows);

    // Remove rs3: new connections only to rs1; rs3's flow still finishes.
    d.xvsadm(&format!("-d -t {svc} -r {rs3}"));
    for _ in 0..4 {
        assert_eq!(get(&lab, vip), "rs1");
    }
    check_flows(&mut flows);

    // Add rs3 back and restore rs2: all three take new connections.
    d.xvsadm(&format!("-a -t {svc} -r {rs3}"));
    d.xvsadm(&format!("-e -t {svc} -r {rs2} -w 1"));
    let seen: std::collections::BTreeSet<String> = (0..6).map(|_| get(&lab, vip)).collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    check_flows(&mut flows);

    let st = d.state();
    let tcp = st
        .services
        .iter()
        .find(|s| s.key.to_string().starts_with("TCP  192.0.2.50"))
        .expect("the TCP service");
    assert!(
        tcp.stats.inpkts > 0 && tcp.stats.conns >= 13,
        "{:?}",
        tcp.stats
    );
    assert_eq!(tcp.stats.outpkts, 0, "DR: the director sees no reply");
    assert_eq!(tcp.stats.outbytes, 0);
    let sum: u64 = tcp.dests.iter().map(|x| x.stats.inpkts).sum();
    assert!(sum <= tcp.stats.inpkts);
    // The three flows are established connections of their servers.
    assert!(
        tcp.dests.iter().all(|x| x.active_conns >= 1),
        "{:?}",
        tcp.dests
    );
    drop(flows);
    d.stop(&lab);
}

/// Start-up failures are clear and leave nothing behind: a broken config
/// names its line; a second xvsd on a live control socket stops before it
/// touches an interface, and the first keeps serving.
#[test]
fn bad_config_and_second_instance_are_refused() {
    let Some(lab) = lab(Mode::Dr, 1) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let dir = TempDir::new("refuse");
    let conf = dir.0.join("bad.conf");
    std::fs::write(
        &conf,
        "-A -t 192.0.2.50:80 -s rr\n-a -t 192.0.2.50:80 -r 192.0.2.20 -w 70000\n",
    )
    .unwrap();
    let sock = dir.0.join("bad.sock");
    let out = lab
        .director()
        .command(XVSD)
        .args(["--iface", "eth0", "--config"])
        .arg(&conf)
        .arg("--socket")
        .arg(&sock)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // 2: a wrong configuration, which the unit does not restart on.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 2") && err.contains("weight"), "{err}");
    let link = lab.director().ip(&["link", "show", "eth0"]).unwrap();
    assert!(!link.contains("xdp"), "{link}");

    let d = Xvsd::start(&lab, &config(&lab, "-g"));
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let out = lab
        .director()
        .command(XVSD)
        .args(["--iface", "eth0", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // 1: a set-up failure, which a restart may cure.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("control socket"), "{err}");
    assert_eq!(get(&lab, vip), "rs1", "the first xvsd still serves");
    d.stop(&lab);
}

/// `xvsadm -S | xvsadm -C; xvsadm -R` against the real daemon: the saved
/// text (thresholds, persistence, timeouts included) comes back identical,
/// and traffic flows again after the restore.
#[test]
fn save_clear_restore_round_trip() {
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let mut conf = config(&lab, "-m");
    conf += "-A -t 198.51.100.50:8080 -s wlc -p 600 -M 255.255.255.0\n";
    conf += "-a -t 198.51.100.50:8080 -r 10.0.0.20:80 -m -w 3 -x 100 -y 50\n";
    conf += "--set 1000 100 200\n";
    let d = Xvsd::start(&lab, &conf);
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let save = |d: &Xvsd| xvs_ctl::save_text(&d.state().to_commands(), true);
    let before = save(&d);
    assert!(
        before.contains("-x 100 -y 50") && before.contains("--set 1000 100 200"),
        "{before}"
    );
    assert!(before.contains("-p 600 -M 255.255.255.0"), "{before}");

    let apply = |cmds: Vec<xvs_ctl::Command>| match d.call(&Request::Apply {
        commands: cmds,
        dry_run: false,
    }) {
        Response::Ok => {}
        other => panic!("{other:?}"),
    };
    apply(vec![xvs_ctl::Command::Clear]);
    assert!(d.state().services.is_empty());
    apply(xvs_ctl::parse_restore(&before).unwrap());
    assert_eq!(save(&d), before);
    assert!(get(&lab, vip).starts_with("rs"));

    // A failing batch changes nothing.
    let bad = xvs_ctl::parse_restore("-C\n-a -t 198.51.100.50:9 -r 10.0.0.20 -m\n").unwrap();
    match d.call(&Request::Apply {
        commands: bad,
        dry_run: false,
    }) {
        Response::Error { index, message } => {
            assert_eq!(index, Some(1));
            assert_eq!(message, "Service not defined");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(save(&d), before);
    d.stop(&lab);
}

/// The seed article's session typed as written, with `xvsadm` for
/// `ipvsadm`, against the real daemon.
#[test]
fn seed_session_with_the_xvsadm_binary() {
    let Some(lab) = lab(Mode::Dr, 2) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, "");
    let xvsadm = |args: &str| {
        let out = std::process::Command::new(xvsadm_bin())
            .args(args.split_whitespace())
            .env("XVS_SOCKET", &d.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xvsadm {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    xvsadm("-A -t 192.0.2.50:80 -s rr");
    xvsadm("-a -t 192.0.2.50:80 -r 192.0.2.20 -g");
    xvsadm("-a -t 192.0.2.50:80 -r 192.0.2.30 -g");
    let vip = lab.vip_addr(Family::V4, HTTP);
    first_answer(&lab, vip);
    let names: Vec<String> = (0..4).map(|_| get(&lab, vip)).collect();
    assert_ne!(names[0], names[1], "{names:?}");
    assert_eq!(names[0], names[2], "{names:?}");
    let stats = xvsadm("-l --stats");
    assert!(
        stats.starts_with("IP Virtual Server version 1.2.1"),
        "{stats}"
    );
    assert!(stats.contains("TCP  192.0.2.50:http"), "{stats}");
    xvsadm("-e -t 192.0.2.50:80 -r 192.0.2.30 -w 0");
    assert!((0..4).all(|_| get(&lab, vip) == "rs1"));
    xvsadm("-d -t 192.0.2.50:80 -r 192.0.2.30");
    xvsadm("-a -t 192.0.2.50:80 -r 192.0.2.30");
    let listing = xvsadm("-L -n");
    // Back in its old slot (IPVS's trash): its TIME_WAIT connections
    // still count as inactive.
    assert!(
        listing.contains("  -> 192.0.2.30:80                Route   1      0          "),
        "{listing}"
    );
    let out = std::process::Command::new(xvsadm_bin())
        .args(["-a", "-t", "192.0.2.50:80", "-r", "192.0.2.30"])
        .env("XVS_SOCKET", &d.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Destination already exists"
    );
    d.stop(&lab);
}
