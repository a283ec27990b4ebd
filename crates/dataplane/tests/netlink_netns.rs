//! The rtnetlink calls of `xvs_dataplane::netlink`, run inside network
//! namespaces that each test creates for itself: `xvs-nl-<pid>-<n>` "a" and
//! "b", joined by a veth pair `xa0` (in a) <-> `xb0` (in b).
//!
//! ```text
//!   a: xa0 10.77.0.1/24 2001:db8:77::1/64 mtu 1400   b: xb0 10.77.0.2/24 2001:db8:77::2/64
//!      10.78.0.0/24, 2001:db8:99::/64 via the b side
//!      default via 10.77.0.254 / 2001:db8:77::fe (absent hosts)
//!      unreachable 203.0.113.0/24
//! ```
//!
//! Needs root (`ip netns add`). Without it, or without veth, each test
//! prints why and passes, unless `CI=true`, where it fails. The only
//! traffic is ARP / neighbour discovery between the two namespaces.
//!
//! Run: `cargo test -p xvs-dataplane --test netlink_netns` (as root).

use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use xvs_conntrack::Af;
use xvs_dataplane::netlink::{
    Error, Mac, Netlink, NextHopResolver, NudState, Resolution, RouteKind, Unusable,
};

const EHOSTUNREACH: i32 = 113;
const ENODEV: i32 = 19;

/// How long a neighbour may take to resolve.
const RESOLVE_WAIT: Duration = Duration::from_secs(3);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs a command, returning its stdout, or why it failed.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace, deleted on drop (also when a test panics).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Result<Netns, String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "xvs-nl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])?;
        Ok(Netns { name })
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip netns exec NS CMD ARGS...`
    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A netlink handle whose socket lives in this namespace. `setns` only
    /// moves the calling thread, so the socket is opened by a thread of its
    /// own; a netlink socket stays in the namespace it was created in,
    /// whichever thread uses it afterwards.
    fn netlink(&self) -> Netlink {
        let path = format!("/var/run/netns/{}", self.name);
        thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            Netlink::open().expect("netlink socket")
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// The MAC of `dev`, as `ip link` shows it.
    fn mac_of(&self, dev: &str) -> Mac {
        let out = self.ip(&["-o", "link", "show", "dev", dev]).unwrap();
        let text = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no link/ether in {out:?}"));
        parse_mac(text)
    }

    /// The ifindex of `dev`, as `ip link` shows it.
    fn ifindex_of(&self, dev: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", dev]).unwrap();
        out.split(':').next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn parse_mac(text: &str) -> Mac {
    let v: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Two namespaces and a veth pair between them.
struct Lab {
    a: Netns,
    b: Netns,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let lab = Lab {
            a: Netns::new()?,
            b: Netns::new()?,
        };
        for ns in [&lab.a, &lab.b] {
            // No duplicate address detection, not even for link-local
            // addresses: the kernel solicits neighbours from its link-local
            // address and sends nothing while that one is tentative.
            ns.exec(&[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ])?;
            ns.ip(&["link", "set", "lo", "up"])?;
        }
        lab.a.ip(&[
            "link",
            "add",
            "xa0",
            "mtu",
            "1400",
            "type",
            "veth",
            "peer",
            "name",
            "xb0",
            "netns",
            &lab.b.name,
        ])?;
        let a = |args: &[&str]| lab.a.ip(args);
        let b = |args: &[&str]| lab.b.ip(args);
        a(&["addr", "add", "10.77.0.1/24", "dev", "xa0"])?;
        a(&["addr", "add", "2001:db8:77::1/64", "dev", "xa0", "nodad"])?;
        b(&["addr", "add", "10.77.0.2/24", "dev", "xb0"])?;
        b(&["addr", "add", "2001:db8:77::2/64", "dev", "xb0", "nodad"])?;
        a(&["link", "set", "xa0", "up"])?;
        b(&["link", "set", "xb0", "up"])?;
        a(&["route", "add", "10.78.0.0/24", "via", "10.77.0.2"])?;
        a(&[
            "-6",
            "route",
            "add",
            "2001:db8:99::/64",
            "via",
            "2001:db8:77::2",
        ])?;
        a(&["route", "add", "default", "via", "10.77.0.254"])?;
        a(&["-6", "route", "add", "default", "via", "2001:db8:77::fe"])?;
        a(&["route", "add", "unreachable", "203.0.113.0/24"])?;
        // Wait for the link-local addresses (DAD is off; this is a guard).
        let start = Instant::now();
        while [&lab.a, &lab.b].iter().any(|ns| {
            !ns.ip(&["-6", "addr", "show", "tentative"])
                .unwrap_or_default()
                .is_empty()
        }) {
            if start.elapsed() > Duration::from_secs(5) {
                return Err("IPv6 addresses still tentative after 5 s".into());
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(lab)
    }
}

/// The lab, or `None` (after saying why) where it cannot be built, which is
/// a failure under `CI=true`.
fn lab() -> Option<Lab> {
    match Lab::new() {
        Ok(lab) => Some(lab),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the netns lab cannot be built (root and veth are needed): {why}")
        }
        Err(why) => {
            eprintln!("skipped: the netns lab cannot be built (root and veth are needed): {why}");
            None
        }
    }
}

/// Polls the neighbour entry of `addr` until `done` holds or `RESOLVE_WAIT`
/// passes; returns the last entry seen.
fn wait_neigh(
    nl: &mut Netlink,
    ifindex: u32,
    addr: IpAddr,
    done: impl Fn(&xvs_dataplane::netlink::Neigh) -> bool,
) -> Option<xvs_dataplane::netlink::Neigh> {
    let start = Instant::now();
    loop {
        let n = nl.neighbour(ifindex, addr).expect("neighbour get");
        if n.as_ref().is_some_and(&done) || start.elapsed() > RESOLVE_WAIT {
            return n;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn links_show_the_veth_with_mac_mtu_and_addresses() {
    let Some(lab) = lab() else { return };
    let mut nl = lab.a.netlink();
    let links = nl.links().unwrap();
    // Only the namespace's own links: the socket is really inside it.
    let names: BTreeSet<&str> = links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["lo", "xa0"]), "{links:#?}");

    let xa0 = nl.link_by_name("xa0").unwrap();
    assert_eq!(xa0.ifindex, lab.a.ifindex_of("xa0"));
    assert_eq!(xa0.mac, Some(lab.a.mac_of("xa0")));
    assert_eq!(xa0.mtu, 1400);
    assert!(xa0.up);
    let v4: Vec<_> = xa0.ipv4.iter().map(|a| (a.addr, a.prefix_len)).collect();
    assert_eq!(v4, vec![(ip("10.77.0.1"), 24)]);
    assert_eq!(xa0.source_v4(), Some("10.77.0.1".parse().unwrap()));
    assert!(
        xa0.ipv6
            .iter()
            .any(|a| a.addr == ip("2001:db8:77::1") && a.prefix_len == 64),
        "{:?}",
        xa0.ipv6
    );
    assert!(
        xa0.ipv6.iter().any(|a| a.is_link_local()),
        "link-local kept: {:?}",
        xa0.ipv6
    );
    assert_eq!(xa0.source_v6(), Some("2001:db8:77::1".parse().unwrap()));
    assert_eq!(nl.link_by_index(xa0.ifindex).unwrap(), xa0);

    let lo = nl.link_by_name("lo").unwrap();
    assert_eq!(lo.mac, None, "loopback is not Ethernet");
    assert!(matches!(
        nl.link_by_name("nope0"),
        Err(Error::NoSuchLink(_))
    ));
    assert_eq!(nl.decode_skips(), 0);
}

#[test]
fn route_get_gives_interface_gateway_and_source() {
    let Some(lab) = lab() else { return };
    let mut nl = lab.a.netlink();
    let xa0 = lab.a.ifindex_of("xa0");

    let r = nl.route_get(ip("10.77.0.2")).unwrap();
    assert_eq!((r.oif, r.gateway, r.kind), (xa0, None, RouteKind::Unicast));
    assert_eq!(r.prefsrc, Some(ip("10.77.0.1")));
    assert_eq!(r.next_hop(ip("10.77.0.2")), ip("10.77.0.2"));

    let r = nl.route_get(ip("10.78.0.9")).unwrap();
    assert_eq!((r.oif, r.gateway), (xa0, Some(ip("10.77.0.2"))));
    assert_eq!(r.next_hop(ip("10.78.0.9")), ip("10.77.0.2"));

    let r = nl.route_get(ip("2001:db8:77::2")).unwrap();
    assert_eq!((r.oif, r.gateway), (xa0, None));
    assert_eq!(r.prefsrc, Some(ip("2001:db8:77::1")));

    let r = nl.route_get(ip("2001:db8:99::5")).unwrap();
    assert_eq!((r.oif, r.gateway), (xa0, Some(ip("2001:db8:77::2"))));

    // Anything else goes to the (absent) default gateway.
    let r = nl.route_get(ip("10.1.2.3")).unwrap();
    assert_eq!(r.gateway, Some(ip("10.77.0.254")));

    let r = nl.route_get(ip("10.77.0.1")).unwrap();
    assert_eq!(r.kind, RouteKind::Local);

    let e = nl.route_get(ip("203.0.113.1")).unwrap_err();
    assert_eq!(e.errno(), Some(EHOSTUNREACH), "{e}");

    let d4 = nl
        .default_route(Af::V4)
        .unwrap()
        .expect("IPv4 default route");
    assert_eq!((d4.oif, d4.gateway), (xa0, Some(ip("10.77.0.254"))));
    let d6 = nl
        .default_route(Af::V6)
        .unwrap()
        .expect("IPv6 default route");
    assert_eq!((d6.oif, d6.gateway), (xa0, Some(ip("2001:db8:77::fe"))));

    // b has no default route, and no route off its subnet at all.
    let mut nlb = lab.b.netlink();
    assert_eq!(nlb.default_route(Af::V4).unwrap(), None);
    assert_eq!(nlb.default_route(Af::V6).unwrap(), None);
    let e = nlb.route_get(ip("10.78.0.9")).unwrap_err();
    assert!(e.errno().is_some(), "{e}");
}

fn resolve_finds_the_peer_mac(peer: &str) {
    let Some(lab) = lab() else { return };
    let mut nl = lab.a.netlink();
    let xa0 = lab.a.ifindex_of("xa0");
    let peer = ip(peer);
    let peer_mac = lab.b.mac_of("xb0");

    assert_eq!(nl.neighbour(xa0, peer).unwrap(), None, "fresh namespace");
    nl.resolve(xa0, peer).unwrap();
    let n = wait_neigh(&mut nl, xa0, peer, |n| n.usable()).expect("an entry");
    assert!(n.usable(), "not resolved within {RESOLVE_WAIT:?}: {n:?}");
    assert_eq!(n.mac, Some(peer_mac));
    assert_eq!(n.state, NudState::REACHABLE);
    assert!(nl.neighbours().unwrap().contains(&n));

    // Kicking an entry that is already reachable is accepted and harmless.
    nl.resolve(xa0, peer).unwrap();
    assert!(nl.neighbour(xa0, peer).unwrap().unwrap().usable());
}

#[test]
fn resolve_ipv4_finds_the_peer_mac() {
    resolve_finds_the_peer_mac("10.77.0.2");
}

#[test]
fn resolve_ipv6_finds_the_peer_mac() {
    resolve_finds_the_peer_mac("2001:db8:77::2");
}

#[test]
fn resolve_of_an_absent_address_is_incomplete_then_failed() {
    let Some(lab) = lab() else { return };
    let mut nl = lab.a.netlink();
    let xa0 = lab.a.ifindex_of("xa0");
    for absent in [ip("10.77.0.99"), ip("2001:db8:77::99")] {
        nl.resolve(xa0, absent).unwrap();
        let n = nl.neighbour(xa0, absent).unwrap().expect("entry created");
        assert!(
            n.state == NudState::INCOMPLETE || n.state == NudState::FAILED,
            "{n:?}"
        );
        assert!(!n.usable());
        assert_eq!(n.mac, None);
    }
    // Let the probes run out (3 x 1 s): FAILED, then kicked again.
    let n = wait_neigh(&mut nl, xa0, ip("10.77.0.99"), |n| {
        n.state == NudState::FAILED
    })
    .expect("entry");
    assert!(
        n.state == NudState::INCOMPLETE || n.state == NudState::FAILED,
        "{n:?}"
    );
    nl.resolve(xa0, ip("10.77.0.99")).unwrap();
    let n = nl.neighbour(xa0, ip("10.77.0.99")).unwrap().expect("entry");
    assert!(!n.usable(), "{n:?}");

    // A wrong interface index is the kernel's error, not a panic.
    let e = nl.resolve(999_999, ip("10.77.0.2")).unwrap_err();
    assert_eq!(e.errno(), Some(ENODEV), "{e}");
}

#[test]
fn resolver_tracks_next_hops_and_reports_changes() {
    let Some(lab) = lab() else { return };
    let mut nl = lab.a.netlink();
    let xa0 = lab.a.ifindex_of("xa0");
    let xa0_mac = lab.a.mac_of("xa0");
    let peer_mac = lab.b.mac_of("xb0");
    let on_link = [ip("10.77.0.2"), ip("2001:db8:77::2")];
    let routed = [ip("10.78.0.9"), ip("2001:db8:99::5")];
    let targets = [
        on_link[0],
        on_link[1],
        routed[0],
        routed[1],
        ip("203.0.113.1"),
        ip("10.77.0.1"),
        ip("10.77.0.99"),
        ip("10.77.0.2"), // listed twice
    ];
    let mut resolver = NextHopResolver::new();
    let first = resolver.refresh(&mut nl, &targets).unwrap();
    assert_eq!(first.len(), 7, "every distinct target is new: {first:#?}");
    assert!(first.iter().all(|c| c.before.is_none()));

    let start = Instant::now();
    while !on_link
        .iter()
        .chain(&routed)
        .all(|t| resolver.get(*t).is_some_and(Resolution::is_ready))
    {
        assert!(
            start.elapsed() < RESOLVE_WAIT,
            "not resolved within {RESOLVE_WAIT:?}: {:#?}",
            resolver.iter().collect::<Vec<_>>()
        );
        thread::sleep(Duration::from_millis(100));
        resolver.refresh(&mut nl, &targets).unwrap();
    }
    for t in on_link.iter().chain(&routed) {
        let Some(Resolution::Ready { hop, mac }) = resolver.get(*t) else {
            unreachable!()
        };
        assert_eq!(*mac, peer_mac, "{t}");
        assert_eq!(
            (hop.ifindex, hop.if_mac, hop.mtu),
            (xa0, xa0_mac, 1400),
            "{t}"
        );
        let gateway = routed.contains(t);
        assert_eq!(hop.via_gateway, gateway, "{t}");
        let expect_hop = match (t, gateway) {
            (IpAddr::V4(_), true) => ip("10.77.0.2"),
            (IpAddr::V6(_), true) => ip("2001:db8:77::2"),
            (_, false) => *t,
        };
        assert_eq!(hop.addr, expect_hop, "{t}");
    }
    assert_eq!(
        resolver.get(ip("203.0.113.1")),
        Some(&Resolution::Unusable(Unusable::NoRoute {
            errno: EHOSTUNREACH
        }))
    );
    assert_eq!(
        resolver.get(ip("10.77.0.1")),
        Some(&Resolution::Unusable(Unusable::NotUnicast(
            RouteKind::Local
        )))
    );
    assert!(
        matches!(
            resolver.get(ip("10.77.0.99")),
            Some(Resolution::Pending { hop, .. }) if hop.addr == ip("10.77.0.99")
        ),
        "{:?}",
        resolver.get(ip("10.77.0.99"))
    );

    // Nothing moved: nothing to publish.
    let again = resolver.refresh(&mut nl, &targets).unwrap();
    assert!(again.is_empty(), "{again:#?}");

    // Targets dropped from the list are reported as removed.
    let gone = resolver.refresh(&mut nl, &targets[..6]).unwrap();
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert_eq!(gone[0].target, ip("10.77.0.99"));
    assert!(gone[0].after.is_none());

    // The egress link goes down: every resolved target changes.
    lab.a.ip(&["link", "set", "xa0", "down"]).unwrap();
    let down = resolver.refresh(&mut nl, &targets[..6]).unwrap();
    let changed: BTreeSet<IpAddr> = down.iter().map(|c| c.target).collect();
    for t in on_link.iter().chain(&routed) {
        assert!(changed.contains(t), "{t} not reported: {down:#?}");
        assert!(!resolver.get(*t).unwrap().is_ready(), "{t}");
    }
}
