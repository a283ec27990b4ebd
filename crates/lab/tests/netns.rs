//! The namespace guard and its helpers (root only; see `xvs_lab::or_skip`).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;

use xvs_lab::{MacAddr, Netns, VethOptions, or_skip, ready, veth};

#[test]
fn namespace_is_removed_on_drop_and_on_panic() {
    if !ready("namespace_is_removed_on_drop_and_on_panic", &[]) {
        return;
    }
    let ns = Netns::new("t-guard").expect("create namespace");
    let path = ns.path();
    let name = ns.name().to_owned();
    assert!(
        name.starts_with(&format!("xvs-t-guard-{}-", std::process::id())),
        "{name}"
    );
    assert!(path.exists());
    assert_eq!(xvs_lab::netns::owner_pid(&name), Some(std::process::id()));
    drop(ns);
    assert!(!path.exists(), "{name} still there after drop");

    let mut seen = None;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Netns::new("t-panic").expect("create namespace");
        seen = Some(ns.path());
        panic!("test panic while {} exists", ns.name());
    }));
    assert!(unwound.is_err());
    let path = seen.expect("namespace was made");
    assert!(!path.exists(), "{} left behind by a panic", path.display());
}

#[test]
fn stale_namespaces_of_dead_pids_are_removed() {
    if !ready("stale_namespaces_of_dead_pids_are_removed", &[]) {
        return;
    }
    // A pid that certainly ended: a child we started and reaped.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("reap");
    let stale = format!("xvs-t-stale-{dead}-0");
    let live = Netns::new("t-live").expect("create namespace");
    Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip netns add");
    let removed = or_skip("cleanup", xvs_lab::cleanup_stale()).unwrap_or_default();
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!Path::new("/run/netns").join(&stale).exists());
    assert!(
        live.path().exists(),
        "a live process's namespace was removed"
    );
}

#[test]
fn veth_queues_macs_and_setns_sockets() {
    if !ready("veth_queues_macs_and_setns_sockets", &["ethtool"]) {
        return;
    }
    let a = Netns::new("t-a").expect("ns a");
    let b = Netns::new("t-b").expect("ns b");
    let mac_a: MacAddr = "02:00:00:99:00:01".parse().unwrap();
    let opts = VethOptions {
        queues: Some(3),
        mac_a: Some(mac_a),
        ..VethOptions::default()
    };
    veth(&a, "eth0", &b, "eth0", &opts).expect("veth");
    assert_eq!(a.mac("eth0").unwrap(), mac_a);
    let rx = a
        .exec(&["ls", "/sys/class/net/eth0/queues"])
        .expect("list queues");
    assert_eq!(
        rx.split_whitespace()
            .filter(|q| q.starts_with("rx-"))
            .count(),
        3,
        "{rx}"
    );
    assert_eq!(
        rx.split_whitespace()
            .filter(|q| q.starts_with("tx-"))
            .count(),
        3,
        "{rx}"
    );
    b.tx_checksum_off("eth0").expect("ethtool");
    let features = b.exec(&["ethtool", "-k", "eth0"]).unwrap();
    assert!(features.contains("tx-checksumming: off"), "{features}");

    let ip_a: IpAddr = "192.0.2.1".parse().unwrap();
    let ip_b: IpAddr = "192.0.2.2".parse().unwrap();
    a.add_addr("eth0", ip_a, 24).unwrap();
    b.add_addr("eth0", ip_b, 24).unwrap();
    a.add_addr("eth0", "2001:db8::1".parse().unwrap(), 64)
        .unwrap();
    b.add_addr("eth0", "2001:db8::2".parse().unwrap(), 64)
        .unwrap();

    // A socket made by `run` lives in the namespace: it can bind an
    // address that exists only there, and talk across the veth.
    let b_sock = b
        .run(|| UdpSocket::bind(SocketAddr::new(ip_b, 0)))
        .unwrap()
        .expect("bind inside b");
    let b_addr = b_sock.local_addr().unwrap();
    assert!(UdpSocket::bind(SocketAddr::new(ip_b, 0)).is_err() || host_has(ip_b));
    a.run(|| {
        let s = UdpSocket::bind(SocketAddr::new(ip_a, 0)).unwrap();
        s.send_to(b"hi", b_addr).unwrap();
    })
    .unwrap();
    b_sock
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = b_sock
        .recv_from(&mut buf)
        .expect("datagram across the veth");
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(from.ip(), ip_a);

    // Neighbours, sysctls.
    let mac_b = b.mac("eth0").unwrap();
    a.neigh_replace("eth0", ip_b, mac_b).unwrap();
    let n = a.neigh_show("eth0", ip_b).unwrap().expect("entry");
    assert_eq!(n.lladdr, Some(mac_b));
    assert!(n.state.contains("PERMANENT"), "{n:?}");
    a.ip_forward(true).unwrap();
    assert_eq!(a.sysctl_get("net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(b.sysctl_get("net.ipv4.ip_forward").unwrap(), "0");
}

fn host_has(ip: IpAddr) -> bool {
    Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {ip}/")))
        .unwrap_or(false)
}

#[test]
fn processes_end_with_their_guard_or_namespace() {
    if !ready("processes_end_with_their_guard_or_namespace", &[]) {
        return;
    }
    let ns = Netns::new("t-proc").expect("ns");
    let guarded = ns.spawn(&["sleep", "300"]).expect("spawn sleep");
    let pid = guarded.id() as i32;
    wait_for(|| ns.pids().unwrap().contains(&pid));
    drop(guarded);
    assert!(!ns.pids().unwrap().contains(&pid));

    // A process left running in the namespace ends when the namespace is
    // dropped.
    let mut loose = ns.command("sleep").arg("300").spawn().expect("spawn");
    let loose_pid = loose.id() as i32;
    wait_for(|| ns.pids().unwrap().contains(&loose_pid));
    drop(ns);
    let status = loose.wait().expect("wait");
    assert!(!status.success(), "killed, not exited: {status}");
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("condition not met in 2 s");
}
