//! The TUN topology: the decap XDP program on a real server turns
//! hand-made IP-in-IP packets (all four combinations of IPv4/IPv6 outer and
//! inner headers) into packets its kernel delivers, and the answer goes
//! straight back to the client from the VIP (root and clang only).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use etherparse::PacketBuilder;
use xvs_lab::client::{ip_in_ip, send_ip_packet, udp_exchange};
use xvs_lab::decap::DECAP_PROG_NAME;
use xvs_lab::{Family, Mode, Topology, or_skip, ready};

const UDP: u16 = 5353;

/// A UDP datagram `src -> dst` as an IPv4 or IPv6 packet, checksums set.
fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let builder = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    }
    .udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).expect("build packet");
    out
}

/// From the client: a UDP socket on the client's `inner` address, an
/// IP-in-IP packet carrying a datagram from it to VIP:UDP, sent to `rs`
/// over `outer`; returns the first answer the socket gets.
fn tunnel_exchange(
    lab: &Topology,
    rs: usize,
    outer: Family,
    inner: Family,
    payload: &[u8],
    timeout: Duration,
) -> xvs_lab::Result<(Vec<u8>, SocketAddr)> {
    let client = lab.client();
    let (c_inner, c_outer) = (client.addr(inner), client.addr(outer));
    let rs_outer = lab.real_servers()[rs].addr(outer);
    let vip = lab.vip_addr(inner, UDP);
    client.run(|| {
        let sock = UdpSocket::bind(SocketAddr::new(c_inner, 0))
            .map_err(|e| xvs_lab::LabError::io("bind", e))?;
        let me = sock
            .local_addr()
            .map_err(|e| xvs_lab::LabError::io("addr", e))?;
        let packet = ip_in_ip(c_outer, rs_outer, &udp_packet(me, vip, payload))?;
        // `udp_exchange` would send a plain datagram: send the tunnel
        // packet instead, then wait on the same socket.
        send_ip_packet(&packet)?;
        sock.set_read_timeout(Some(timeout))
            .map_err(|e| xvs_lab::LabError::io("timeout", e))?;
        let mut buf = [0u8; 2048];
        let (n, from) = sock
            .recv_from(&mut buf)
            .map_err(|e| xvs_lab::LabError::io("answer", e))?;
        Ok((buf[..n].to_vec(), from))
    })?
}

#[test]
fn tun_decap_delivers_ip_in_ip_to_the_real_server() {
    let what = "tun_decap_delivers_ip_in_ip_to_the_real_server";
    if !ready(what, &["ethtool"]) {
        return;
    }
    let Some(lab) = or_skip(what, Topology::builder(Mode::Tun).real_servers(2).build()) else {
        return;
    };
    let _echo = lab.start_echo(0, UDP).expect("echo servers");
    for rs in lab.real_servers() {
        assert_eq!(
            rs.xdp_prog("eth0").unwrap().as_deref(),
            Some(DECAP_PROG_NAME)
        );
    }
    for (i, rs) in lab.real_servers().iter().enumerate() {
        for outer in Family::ALL {
            for inner in Family::ALL {
                let payload = format!("{outer:?}-in-{inner:?}");
                let (answer, from) = tunnel_exchange(
                    &lab,
                    i,
                    outer,
                    inner,
                    payload.as_bytes(),
                    Duration::from_secs(3),
                )
                .unwrap_or_else(|e| panic!("{} {payload}: {e}", rs.role()));
                assert_eq!(answer, format!("{}\n{payload}", rs.role()).as_bytes());
                // Straight from the real server, as the VIP, unencapsulated.
                assert_eq!(from, lab.vip_addr(inner, UDP), "{payload}");
            }
        }
    }
    // Plain (unencapsulated) traffic still reaches the real server.
    let rs1 = &lab.real_servers()[0];
    let direct = SocketAddr::new(rs1.addr(Family::V4), UDP);
    let (answer, _) = lab
        .client()
        .run(|| {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            udp_exchange(&s, direct, b"plain", Duration::from_secs(3))
        })
        .unwrap()
        .expect("plain UDP");
    assert_eq!(answer, b"rs1\nplain");

    // The control: without the program the kernel here cannot decapsulate
    // (no ipip module), and no answer comes.
    rs1.detach_xdp("eth0").unwrap();
    assert_eq!(rs1.xdp_prog("eth0").unwrap(), None);
    let lost = tunnel_exchange(
        &lab,
        0,
        Family::V4,
        Family::V4,
        b"x",
        Duration::from_millis(500),
    );
    assert!(lost.is_err(), "decapsulated without the program: {lost:?}");
    rs1.attach_decap("eth0").unwrap();
    let (answer, _) = tunnel_exchange(
        &lab,
        0,
        Family::V4,
        Family::V4,
        b"y",
        Duration::from_secs(3),
    )
    .expect("again with the program");
    assert_eq!(answer, b"rs1\ny");
}
