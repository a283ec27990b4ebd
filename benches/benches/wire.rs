//! Packet parsing and checksums: `wire::parse` against etherparse's
//! `SlicedPacket::from_ethernet` on minimum-size frames, and the checksum
//! work of a NAT rewrite done incrementally versus from scratch.
//!
//! `cargo bench -p xvs-benches --bench wire`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::{PacketBuilder, SlicedPacket};
use xvs_conntrack::Addr;
use xvs_dataplane::wire::{self, Ipv4Packet, TcpPacket, checksum};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT: [u8; 4] = [192, 0, 2, 1];
const VIP: [u8; 4] = [198, 51, 100, 10];
const REAL_SERVER: [u8; 4] = [10, 0, 0, 20];

/// The smallest frames of each kind the director forwards: 64 bytes for
/// IPv4 TCP (10 bytes of payload) and UDP (22), 74 for IPv6 TCP (headers
/// only).
fn frames() -> [(&'static str, Vec<u8>); 3] {
    let mut v4_tcp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(CLIENT, VIP, 64)
        .tcp(54321, 80, 1, 64240)
        .ack(1)
        .write(&mut v4_tcp, &[0x61; 10])
        .unwrap();
    let mut v4_udp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(CLIENT, VIP, 64)
        .udp(5353, 53)
        .write(&mut v4_udp, &[0x61; 22])
        .unwrap();
    let mut v6_tcp = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6([0x20; 16], [0xfd; 16], 64)
        .tcp(54321, 80, 1, 64240)
        .syn()
        .write(&mut v6_tcp, &[])
        .unwrap();
    assert_eq!((v4_tcp.len(), v4_udp.len(), v6_tcp.len()), (64, 64, 74));
    [
        ("ipv4_tcp", v4_tcp),
        ("ipv4_udp", v4_udp),
        ("ipv6_tcp", v6_tcp),
    ]
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, frame) in frames() {
        g.bench_function(format!("xvs/{name}"), |b| {
            b.iter(|| wire::parse(black_box(&frame)))
        });
        g.bench_function(format!("etherparse/{name}"), |b| {
            b.iter(|| SlicedPacket::from_ethernet(black_box(&frame)).is_ok())
        });
    }
    g.finish();
}

/// The checksum work of a DNAT (VIP:80 -> real server:8080) on the 64-byte
/// IPv4 TCP frame: IPv4 header checksum and TCP checksum.
fn checksums(c: &mut Criterion) {
    let [(_, frame), ..] = frames();
    let info = wire::parse(&frame).unwrap();
    let (vip, rs) = (Addr::v4(VIP), Addr::v4(REAL_SERVER));
    let mut g = c.benchmark_group("checksum");
    g.bench_function("nat_v4_tcp/incremental", |b| {
        let mut f = frame.clone();
        b.iter(|| {
            let f = black_box(&mut f[..]);
            let mut ip = Ipv4Packet::new_unchecked(&mut f[info.l3_off..]);
            ip.set_checksum(checksum::update_addr(ip.checksum(), &vip, &rs));
            let mut tcp = TcpPacket::new_unchecked(&mut f[info.l4_off..][..info.l4_len]);
            let sum = checksum::update_addr(tcp.checksum(), &vip, &rs);
            tcp.set_checksum(checksum::update_u16(sum, 80, 8080));
        })
    });
    g.bench_function("nat_v4_tcp/full", |b| {
        let mut f = frame.clone();
        b.iter(|| {
            let f = black_box(&mut f[..]);
            Ipv4Packet::new_unchecked(&mut f[info.l3_off..]).fill_checksum();
            TcpPacket::new_unchecked(&mut f[info.l4_off..][..info.l4_len])
                .fill_checksum(&info.src, &rs);
        })
    });
    let segment = vec![0x5a; 1480];
    g.bench_function("sum/1480_bytes", |b| {
        b.iter(|| checksum::sum(black_box(&segment)))
    });
    g.bench_function("etherparse_sum/1480_bytes", |b| {
        b.iter(|| {
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(black_box(&segment))
                .ones_complement()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    targets = parse, checksums
}
criterion_main!(benches);
