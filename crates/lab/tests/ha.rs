//! The high-availability labs without xvsd (root only; see
//! `xvs_lab::or_skip`):
//!
//! - several directors and a router: addresses and MACs follow the scheme,
//!   the router's ECMP group spreads flows by their L4 tuple over the
//!   directors (each director's kernel answers here, naming itself), and a
//!   withdrawal moves only the withdrawn director's flows;
//! - BIRD from `deploy/bird/`: BGP builds the router's ECMP route, a
//!   director withdraws itself with birdc, a dead one by the hold timer;
//! - keepalived from `deploy/keepalived/`: the VIP goes to the preferred
//!   director, moves to the other when the first one is cut off, the
//!   client follows the gratuitous ARP / unsolicited NA, and the committed
//!   notify script asks xvsadm for the sync daemon of each new state.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use xvs_lab::keepalived::{Keepalived, VrrpConfig};
use xvs_lab::{EchoConfig, EchoServer, Ecmp, Family, Mode, Topology, or_skip, ready};

const HTTP: u16 = 80;

fn ecmp_lab(what: &str, directors: usize, kind: Ecmp) -> Option<Topology> {
    if !ready(what, &["ethtool"]) {
        return None;
    }
    or_skip(
        what,
        Topology::builder(Mode::Dr)
            .real_servers(1)
            .directors(directors)
            .router(true)
            .ecmp(kind)
            .build(),
    )
}

/// The director the router picks for each of `ports` (IPv4).
fn picks(lab: &Topology, ports: &[u16]) -> Vec<usize> {
    ports
        .iter()
        .map(|p| lab.ecmp_route(*p, HTTP).unwrap())
        .collect()
}

#[test]
fn directors_and_router_follow_the_address_scheme() {
    let Some(lab) = ecmp_lab(
        "directors_and_router_follow_the_address_scheme",
        3,
        Ecmp::Resilient,
    ) else {
        return;
    };
    let d: Vec<(String, String, String)> = lab
        .directors()
        .iter()
        .map(|h| {
            (
                h.role().to_owned(),
                h.addr(Family::V4).to_string(),
                h.mac().to_string(),
            )
        })
        .collect();
    assert_eq!(
        d,
        [
            ("director", "192.0.2.10", "02:00:00:00:02:00"),
            ("director2", "192.0.2.11", "02:00:00:00:02:01"),
            ("director3", "192.0.2.12", "02:00:00:00:02:02"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(
        lab.directors()[1].addr(Family::V6).to_string(),
        "2001:db8::11"
    );
    assert_eq!(lab.director().role(), "director");
    let router = lab.router().expect("router");
    assert_eq!(
        router.ifaces()[1].addr(Family::V4).to_string(),
        "192.0.2.254"
    );
    assert_eq!(router.ifaces()[0].mac.to_string(), "02:00:00:02:04:00");
    assert_eq!(lab.client().addr(Family::V4).to_string(), "198.51.100.1");
    assert_eq!(lab.client().addr(Family::V6).to_string(), "2001:db8:1::1");
    // Nexthop objects in a resilient group work on this kernel.
    assert_eq!(lab.ecmp(), Some(Ecmp::Resilient));
    assert_eq!(lab.ecmp_members(), [0, 1, 2]);
    let env: BTreeMap<String, String> = lab.env().into_iter().collect();
    assert_eq!(env["XVS_DIRECTOR_COUNT"], "3");
    assert_eq!(env["XVS_DIRECTOR2_IP4"], "192.0.2.11");
    assert_eq!(env["XVS_ROUTER_INSIDE_IP6"], "2001:db8::254");
    assert_eq!(env["XVS_ECMP"], "resilient");
    // Nobody claims the VIP on the segment: the directors hold it on lo,
    // hidden like the real servers.
    for h in lab.directors() {
        let lo = h.ip(&["addr", "show", "dev", "lo"]).unwrap();
        assert!(
            lo.contains("192.0.2.50/32") && lo.contains("2001:db8::50/128"),
            "{lo}"
        );
        assert_eq!(h.sysctl_get("net.ipv4.conf.eth0.arp_ignore").unwrap(), "1");
    }
    assert!(lab.withdraw_director(7).is_err());
}

/// Real connections from the client land on the director the router's
/// lookup names; after a withdrawal, the withdrawn director's flows go to
/// the others and no other flow moves (resilient group), in both families.
#[test]
fn ecmp_spreads_by_port_and_a_withdrawal_moves_only_its_flows() {
    let what = "ecmp_spreads_by_port_and_a_withdrawal_moves_only_its_flows";
    let Some(lab) = ecmp_lab(what, 3, Ecmp::Resilient) else {
        return;
    };
    // Each director's kernel answers for the VIP (it holds it on lo) and
    // names itself: the client sees which director the router chose.
    let _servers: Vec<EchoServer> = lab
        .directors()
        .iter()
        .map(|d| EchoServer::start_in(d, &EchoConfig::wildcard(d.role(), HTTP, 0)).unwrap())
        .collect();
    let vip4 = lab.vip_addr(Family::V4, HTTP);
    lab.client()
        .http_get_retry(vip4, "/", Duration::from_secs(5))
        .unwrap();
    for _ in 0..20 {
        let r = lab.client().http_get(vip4, "/").unwrap();
        let expect = lab.ecmp_route(r.local.port(), HTTP).unwrap();
        assert_eq!(r.text().trim(), lab.directors()[expect].role());
    }

    // Long-lived flows in both families, each on the director it landed on.
    let director = |name: &str| {
        lab.directors()
            .iter()
            .position(|d| d.role() == name)
            .unwrap_or_else(|| panic!("{name:?}"))
    };
    let mut flows = Vec::new();
    for family in Family::ALL {
        let vip = lab.vip_addr(family, HTTP);
        let mut seen = [0usize; 3];
        for _ in 0..60 {
            let mut c = lab
                .client()
                .http_connect(vip, Duration::from_secs(3))
                .unwrap();
            let name = c.get("/", Duration::from_secs(3)).unwrap().text();
            let d = director(name.trim());
            seen[d] += 1;
            flows.push((family, d, c));
        }
        assert!(seen.iter().all(|n| *n > 5), "{family:?}: {seen:?}");
    }
    let before = picks(&lab, &(40_000..40_300).collect::<Vec<_>>());
    lab.withdraw_director(1).unwrap();
    assert_eq!(lab.ecmp_members(), [0, 2]);
    // Flows of directors 1 and 3 go on; director 2's reach another
    // director's kernel, which has no such connection and resets it.
    for (family, d, c) in &mut flows {
        let r = c.get("/", Duration::from_secs(3));
        match (*d, r) {
            (1, Err(_)) => {}
            (1, Ok(r)) => panic!(
                "{family:?}: a flow of director 2 still answered: {}",
                r.text()
            ),
            (d, Ok(r)) => assert_eq!(r.text().trim(), lab.directors()[d].role()),
            (d, Err(e)) => panic!("{family:?}: a flow of director {} broke: {e}", d + 1),
        }
    }
    let after = picks(&lab, &(40_000..40_300).collect::<Vec<_>>());
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    let of_withdrawn = before.iter().filter(|d| **d == 1).count();
    assert!(after.iter().all(|d| *d != 1));
    assert_eq!(moved, of_withdrawn, "only director 2's flows move");

    lab.announce_director(1).unwrap();
    assert_eq!(lab.ecmp_members(), [0, 1, 2]);
    lab.withdraw_director(0).unwrap();
    lab.withdraw_director(2).unwrap();
    assert!(lab.withdraw_director(1).is_err(), "the last one stays");
    assert_eq!(picks(&lab, &[40_000, 40_001, 40_002]), [1; 3]);
}

/// The plain multipath route (hash-threshold) for comparison: taking out
/// the first of three directors also moves flows between the other two.
#[test]
fn multipath_route_withdrawal_moves_more() {
    let what = "multipath_route_withdrawal_moves_more";
    let Some(lab) = ecmp_lab(what, 3, Ecmp::Multipath) else {
        return;
    };
    assert_eq!(lab.ecmp(), Some(Ecmp::Multipath));
    let route = lab
        .router()
        .unwrap()
        .ip(&["route", "show", "192.0.2.50"])
        .unwrap();
    assert_eq!(route.matches("nexthop via").count(), 3, "{route}");
    let ports: Vec<u16> = (40_000..40_300).collect();
    let before = picks(&lab, &ports);
    lab.withdraw_director(0).unwrap();
    let after = picks(&lab, &ports);
    let collateral = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| **a != 0 && a != b)
        .count();
    println!(
        "multipath (hash-threshold), 3 -> 2 directors: {collateral} of {} flows of the remaining directors moved",
        before.iter().filter(|d| **d != 0).count()
    );
    assert!(collateral > 0, "hash-threshold shifts ranges");
}

fn vrrp_lab(what: &str) -> Option<Topology> {
    if !ready(what, &["ethtool", "keepalived"]) {
        return None;
    }
    or_skip(
        what,
        Topology::builder(Mode::Dr)
            .real_servers(1)
            .directors(2)
            .director_vip(false)
            .build(),
    )
}

fn has_vip(h: &xvs_lab::Host, vip: IpAddr) -> bool {
    h.ip(&["addr", "show", "dev", "eth0"])
        .unwrap()
        .contains(&format!("{vip}/"))
}

/// A stand-in for xvsadm that records its arguments, one call per line.
fn stub_xvsadm(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let stub = dir.join("xvsadm");
    let log = dir.join("calls");
    std::fs::write(&stub, "#!/bin/sh\necho \"$*\" >> \"$XVS_STUB_LOG\"\n").unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    (stub, log)
}

fn calls(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn keepalived_moves_the_vip_when_the_master_is_cut_off() {
    let what = "keepalived_moves_the_vip_when_the_master_is_cut_off";
    let Some(lab) = vrrp_lab(what) else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!("xvs-lab-ha-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (d1, d2) = (&lab.directors()[0], &lab.directors()[1]);
    let mut keepalived = Vec::new();
    let mut logs = Vec::new();
    for (k, prio) in [(0usize, 150u8), (1, 100)] {
        let dir = tmp.join(format!("d{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (stub, log) = stub_xvsadm(&dir);
        let mut cfg = VrrpConfig::for_lab(&lab, prio);
        cfg.advert_int = Duration::from_millis(200);
        cfg.start_master = k == 0;
        let env = [
            ("XVSADM", stub.as_os_str()),
            ("XVS_STUB_LOG", log.as_os_str()),
        ];
        let env: Vec<(&str, &OsStr)> = env.to_vec();
        keepalived.push(Keepalived::start(&lab.directors()[k], &cfg, &env).unwrap());
        logs.push(log);
    }
    keepalived[0]
        .wait_state("MASTER", Duration::from_secs(5))
        .unwrap();
    keepalived[1]
        .wait_state("BACKUP", Duration::from_secs(5))
        .unwrap();
    for f in Family::ALL {
        assert!(has_vip(d1, lab.vip(f)) && !has_vip(d2, lab.vip(f)), "{f:?}");
    }
    // The client reaches the VIP at d1's MAC (its kernel refuses: no
    // listener; what matters is who answered ARP / ND).
    for f in Family::ALL {
        let _ = lab
            .client()
            .http_get_timeout(lab.vip_addr(f, HTTP), "/", Duration::from_secs(1));
        let n = lab
            .client()
            .neigh_show("eth0", lab.vip(f))
            .unwrap()
            .unwrap();
        assert_eq!(n.lladdr, Some(d1.mac()), "{f:?}");
    }

    let cfg2 = {
        let mut c = VrrpConfig::for_lab(&lab, 100);
        c.advert_int = Duration::from_millis(200);
        c
    };
    let t0 = Instant::now();
    lab.unplug_director(0).unwrap();
    let deadline = t0 + Duration::from_secs(5);
    while !has_vip(d2, lab.vip(Family::V4)) {
        assert!(Instant::now() < deadline, "{}", keepalived[1].log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t0.elapsed();
    println!(
        "VRRP takeover (advert 0.2 s, priority 100): VIP on d2 after {:.0} ms (master down interval {:.0} ms)",
        took.as_secs_f64() * 1e3,
        cfg2.master_down_interval().as_secs_f64() * 1e3
    );
    // The backup's timer runs from the last advert it heard, up to one
    // interval before the cut.
    let down = cfg2.master_down_interval();
    assert!(
        took + cfg2.advert_int + Duration::from_millis(50) >= down
            && took <= down + Duration::from_secs(1),
        "{took:?}"
    );
    keepalived[1]
        .wait_state("MASTER", Duration::from_secs(1))
        .unwrap();
    // The gratuitous ARP and unsolicited NA moved the client's entries.
    let deadline = Instant::now() + Duration::from_secs(3);
    for f in Family::ALL {
        assert!(has_vip(d2, lab.vip(f)), "{f:?}");
        loop {
            let n = lab.client().neigh_show("eth0", lab.vip(f)).unwrap();
            if n.and_then(|n| n.lladdr) == Some(d2.mac()) {
                break;
            }
            assert!(Instant::now() < deadline, "{f:?}: client still at d1");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // d1, cut off, sees its carrier go and faults.
    keepalived[0]
        .wait_state("FAULT", Duration::from_secs(3))
        .unwrap();

    // The notify script drove the sync daemons through xvsadm.
    let deadline = Instant::now() + Duration::from_secs(3);
    let want_d2 = [
        "--stop-daemon master",
        "-L --daemon",
        "--start-daemon backup --mcast-interface eth0 --syncid 50",
        "--stop-daemon backup",
        "-L --daemon",
        "--start-daemon master --mcast-interface eth0 --syncid 50",
    ];
    while calls(&logs[1]) != want_d2 {
        assert!(Instant::now() < deadline, "d2: {:?}", calls(&logs[1]));
        std::thread::sleep(Duration::from_millis(20));
    }
    // d1 was master, then (cut off) faulted back to the backup daemon.
    let d1_calls = calls(&logs[0]).join("\n");
    assert!(
        d1_calls.ends_with(
            "--stop-daemon backup\n-L --daemon\n\
             --start-daemon master --mcast-interface eth0 --syncid 50\n\
             --stop-daemon master\n-L --daemon\n\
             --start-daemon backup --mcast-interface eth0 --syncid 50"
        ),
        "{d1_calls}"
    );
    drop(keepalived);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn routes_to(router: &xvs_lab::Host, vip: IpAddr) -> Vec<String> {
    let fam = if vip.is_ipv4() { "-4" } else { "-6" };
    let out = router
        .ip(&[fam, "route", "show", &vip.to_string()])
        .unwrap_or_default();
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_owned())
        .collect()
}

/// The committed BIRD configurations do the ECMP job: each director
/// announces the VIPs, the router installs them over both; `birdc
/// disable` withdraws one director (its flows end, the other's go on); a
/// director cut off the segment is withdrawn when the hold timer expires.
#[test]
fn bgp_from_the_committed_bird_configs_spreads_and_withdraws() {
    use xvs_lab::bird::Bird;
    let what = "bgp_from_the_committed_bird_configs_spreads_and_withdraws";
    if !ready(what, &["ethtool", "bird", "birdc"]) {
        return;
    }
    let Some(lab) = or_skip(
        what,
        Topology::builder(Mode::Dr)
            .real_servers(1)
            .directors(2)
            .router(true)
            .ecmp(Ecmp::Bgp)
            .build(),
    ) else {
        return;
    };
    let router = lab.router().unwrap();
    let d_addr = |k: usize, f: Family| lab.directors()[k].addr(f).to_string();
    for f in Family::ALL {
        assert!(routes_to(router, lab.vip(f)).is_empty(), "no route yet");
    }
    let _servers: Vec<EchoServer> = lab
        .directors()
        .iter()
        .map(|d| EchoServer::start_in(d, &EchoConfig::wildcard(d.role(), HTTP, 0)).unwrap())
        .collect();
    let t0 = Instant::now();
    let birds = [
        Bird::router(&lab).unwrap(),
        Bird::director(&lab, 0).unwrap(),
        Bird::director(&lab, 1).unwrap(),
    ];
    birds[0].wait_established(Duration::from_secs(20)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for f in Family::ALL {
        let want = vec![d_addr(0, f), d_addr(1, f)];
        while routes_to(router, lab.vip(f)) != want {
            assert!(
                Instant::now() < deadline,
                "{f:?}: {:?}",
                routes_to(router, lab.vip(f))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!(
        "BGP: both directors' VIP routes on the router {:.1} s after BIRD started",
        t0.elapsed().as_secs_f64()
    );
    let director = |name: &str| lab.directors().iter().position(|d| d.role() == name);
    let mut flows = Vec::new();
    for family in Family::ALL {
        let vip = lab.vip_addr(family, HTTP);
        let mut seen = [0usize; 2];
        for _ in 0..30 {
            let mut c = lab
                .client()
                .http_connect(vip, Duration::from_secs(3))
                .unwrap();
            let name = c.get("/", Duration::from_secs(3)).unwrap().text();
            let d = director(name.trim()).unwrap();
            seen[d] += 1;
            flows.push((d, c));
        }
        assert!(seen.iter().all(|n| *n > 3), "{family:?}: {seen:?}");
    }

    // Maintenance on d2: it withdraws the VIPs.
    let t0 = Instant::now();
    birds[2].birdc("disable \"vip*\"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for f in Family::ALL {
        while routes_to(router, lab.vip(f)) != [d_addr(0, f)] {
            assert!(Instant::now() < deadline, "{f:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let withdrawn = t0.elapsed();
    for (d, c) in &mut flows {
        let r = c.get("/", Duration::from_secs(3));
        match (*d, r) {
            (0, Ok(r)) => assert_eq!(r.text().trim(), "director"),
            (0, Err(e)) => panic!("a flow of d1 broke: {e}"),
            (_, Ok(r)) => panic!("a flow of d2 still answered: {}", r.text()),
            (_, Err(_)) => {}
        }
    }
    birds[2].birdc("enable \"vip*\"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while routes_to(router, lab.vip(Family::V4)).len() != 2 {
        assert!(Instant::now() < deadline, "d2 announced again");
        std::thread::sleep(Duration::from_millis(20));
    }

    // d1 dies (cut off the segment): the router's hold timer (3 s)
    // withdraws it.
    let t0 = Instant::now();
    lab.unplug_director(0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    for f in Family::ALL {
        while routes_to(router, lab.vip(f)) != [d_addr(1, f)] {
            assert!(Instant::now() < deadline, "{f:?}: d1 still routed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let dead = t0.elapsed();
    println!(
        "BGP: withdrawal (birdc disable) in the router's table after {:.0} ms; \
         a director cut off withdrawn after {:.2} s (hold time 3 s)",
        withdrawn.as_secs_f64() * 1e3,
        dead.as_secs_f64()
    );
    assert!(dead <= Duration::from_secs(4), "{dead:?}");
}
