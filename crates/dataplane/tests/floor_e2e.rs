//! The benchmarks' I/O floor (`xvs_lab::floor`: xvsd's steering program,
//! sockets and worker loop with a MAC-rewriting handler) forwards for real:
//! in a DR lab, UDP datagrams to the VIP reach the real servers picked by
//! source port, whose answers come back to the client from the VIP, and
//! what is not steered (ARP, the director's own traffic) still reaches the
//! kernel. The veth packet-rate bench's `floor` case relies on it.
//!
//! Needs root, `ip`, `ethtool`: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::Duration;

use xvs_conntrack::{Addr, Proto};
use xvs_dataplane::xdp::SteerKey;
use xvs_lab::floor::{Floor, FloorConfig};
use xvs_lab::{Family, Mode, Topology};

const HTTP: u16 = 80;
const UDP: u16 = 5353;

#[test]
fn floor_forwards_by_source_port_and_leaves_the_rest_to_the_kernel() {
    if !xvs_lab::ready("AF_XDP floor", &["ethtool"]) {
        return;
    }
    let Some(lab) = xvs_lab::or_skip("lab", Topology::builder(Mode::Dr).real_servers(2).build())
    else {
        return;
    };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let vip = lab.vip(Family::V4);
    let cfg = FloorConfig {
        iface: lab.director_outside().dev.clone(),
        steer: vec![SteerKey::new(Proto::Udp, Addr::from(vip), UDP)],
        next_hops: lab
            .real_servers()
            .iter()
            .map(|rs| rs.mac().octets())
            .collect(),
        ..FloorConfig::default()
    };
    let floor = Floor::start(lab.director(), cfg).expect("floor starts");

    // Sixteen source ports: both real servers answer, each port always
    // the same one (the handler picks by source port).
    let to = lab.vip_addr(Family::V4, UDP);
    let answers = lab
        .client()
        .run(move || {
            let mut out = Vec::new();
            for _ in 0..2 {
                let socks: Vec<UdpSocket> = (0..16)
                    .map(|_| UdpSocket::bind("0.0.0.0:0").expect("bind"))
                    .collect();
                for s in &socks {
                    let port = s.local_addr().expect("local").port();
                    let (answer, from) =
                        xvs_lab::client::udp_exchange(s, to, b"ping", Duration::from_secs(2))
                            .expect("an answer through the floor");
                    assert_eq!(from, to, "answer from the VIP");
                    let who = String::from_utf8_lossy(&answer);
                    let rs = who.split_whitespace().next().unwrap_or_default().to_owned();
                    out.push((port, rs));
                }
            }
            out
        })
        .unwrap();
    let servers: BTreeSet<&str> = answers.iter().map(|(_, rs)| rs.as_str()).collect();
    assert_eq!(servers.len(), 2, "both real servers answered: {answers:?}");
    for (port, rs) in &answers {
        let want = format!("rs{}", usize::from(*port) % 2 + 1);
        assert_eq!(rs, &want, "source port {port} went to {rs}");
    }

    // Not steered: the director's own address still answers pings (ARP and
    // ICMP go to the kernel).
    let dir_ip = lab.director_outside().addr(Family::V4);
    lab.client()
        .exec(&["ping", "-c", "1", "-W", "2", &dir_ip.to_string()])
        .expect("the director's kernel answers beside the floor");

    let report = floor.stop().expect("floor stops");
    assert_eq!(report.forwarded, answers.len() as u64, "{report:?}");
    assert_eq!(report.dropped, 0);
    assert_eq!(report.tx_ring_full, 0);
}
