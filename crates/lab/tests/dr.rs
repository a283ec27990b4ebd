//! The DR topology, with the kernel standing in for the director where it
//! can (root only; see `xvs_lab::or_skip`).
//!
//! - A client whose neighbour entry points the VIP at a real server's MAC
//!   (what the director's MAC rewrite does) gets that real server's answer
//!   from the VIP: the VIP on `lo` with arp_ignore/arp_announce works.
//! - Nobody but the director answers ARP or ND for the VIP; with
//!   `arp_ignore=0` a real server would (the seed's "ARP problem").

use std::net::SocketAddr;
use std::time::Duration;

use xvs_lab::{Family, LabError, Mode, Topology, or_skip, pattern, ready};

const HTTP: u16 = 80;
const UDP: u16 = 5353;
const T: Duration = Duration::from_secs(5);

fn dr_lab(what: &str, director_vip: bool) -> Option<Topology> {
    if !ready(what, &["ethtool"]) {
        return None;
    }
    or_skip(
        what,
        Topology::builder(Mode::Dr)
            .real_servers(2)
            .director_vip(director_vip)
            .build(),
    )
}

#[test]
fn dr_real_server_answers_the_client_from_the_vip() {
    let Some(lab) = dr_lab("dr_real_server_answers_the_client_from_the_vip", true) else {
        return;
    };
    let _echo = lab.start_echo(HTTP, UDP).expect("echo servers");
    let client = lab.client();
    for family in Family::ALL {
        let vip = lab.vip(family);
        for rs in lab.real_servers() {
            client.neigh_replace("eth0", vip, rs.mac()).unwrap();
            let r = client
                .http_get(lab.vip_addr(family, HTTP), "/")
                .unwrap_or_else(|e| panic!("{family:?} GET via {}: {e}", rs.role()));
            assert_eq!(r.text(), format!("{}\n", rs.role()));
            // The real server saw the real client and answered as the VIP.
            let client_ip = client.addr(family);
            assert_eq!(
                r.header("x-client-addr"),
                Some(
                    SocketAddr::new(client_ip, r.local.port())
                        .to_string()
                        .as_str()
                )
            );
            assert_eq!(
                r.header("x-local-addr"),
                Some(lab.vip_addr(family, HTTP).to_string().as_str())
            );
            // UDP: the answer leaves from the VIP although the server
            // socket is bound to the wildcard address.
            let (answer, from) = client
                .udp_request(lab.vip_addr(family, UDP), b"hello", T)
                .expect("UDP answer");
            assert_eq!(answer, format!("{}\nhello", rs.role()).as_bytes());
            assert_eq!(from, lab.vip_addr(family, UDP));
        }
        // Multi-megabyte answer, checked byte by byte.
        let r = client
            .http_get(lab.vip_addr(family, HTTP), "/bytes/4000000")
            .expect("big GET");
        assert_eq!(r.body.len(), 4_000_000);
        assert_eq!(pattern::first_mismatch(0, &r.body), None);
        client.neigh_del("eth0", vip).unwrap();
    }
}

fn refused(e: &LabError) -> bool {
    matches!(e, LabError::Io { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn dr_only_the_director_answers_arp_and_nd_for_the_vip() {
    let Some(lab) = dr_lab("dr_only_the_director_answers_arp_and_nd_for_the_vip", true) else {
        return;
    };
    let _echo = lab.start_echo(HTTP, 0).expect("echo servers");
    let client = lab.client();
    let director = lab.director();
    // With the director owning the VIP, the client resolves it to the
    // director, whose kernel refuses the connection (no xvsd here).
    for family in Family::ALL {
        let e = client
            .http_get(lab.vip_addr(family, HTTP), "/")
            .expect_err("the director's kernel has no listener");
        assert!(refused(&e), "{family:?}: {e}");
        let n = client
            .neigh_show("eth0", lab.vip(family))
            .unwrap()
            .expect("entry");
        assert_eq!(n.lladdr, Some(director.mac()), "{family:?}");
    }
    // Without it, nobody answers: the real servers hold the VIP on lo but
    // stay silent (arp_ignore=1; IPv6 answers ND only for addresses of the
    // receiving interface).
    director.del_addr("eth0", lab.vip(Family::V4), 32).unwrap();
    director.del_addr("eth0", lab.vip(Family::V6), 128).unwrap();
    std::thread::scope(|s| {
        for family in Family::ALL {
            let lab = &lab;
            s.spawn(move || {
                let client = lab.client();
                client.neigh_del("eth0", lab.vip(family)).unwrap();
                let e = client
                    .http_get(lab.vip_addr(family, HTTP), "/")
                    .expect_err("nobody may answer for the VIP");
                assert!(!refused(&e), "{family:?}: someone answered: {e}");
                let n = client.neigh_show("eth0", lab.vip(family)).unwrap();
                assert_eq!(n.and_then(|n| n.lladdr), None, "{family:?}: VIP resolved");
            });
        }
    });
    // The control: with arp_ignore=0 a real server answers ARP for its
    // loopback VIP and takes the client's traffic (the "ARP problem").
    let rs1 = &lab.real_servers()[0];
    rs1.sysctl(&[
        ("net.ipv4.conf.all.arp_ignore", "0"),
        ("net.ipv4.conf.eth0.arp_ignore", "0"),
    ])
    .unwrap();
    client.neigh_del("eth0", lab.vip(Family::V4)).unwrap();
    let r = client
        .http_get(lab.vip_addr(Family::V4, HTTP), "/")
        .expect("rs1 answers once it answers ARP");
    assert_eq!(r.text(), "rs1\n");
    let n = client
        .neigh_show("eth0", lab.vip(Family::V4))
        .unwrap()
        .expect("entry");
    assert_eq!(n.lladdr, Some(rs1.mac()));
}
