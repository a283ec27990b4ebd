//! Pipeline fixtures: every expected frame is built independently with
//! etherparse (full checksums), so a byte-for-byte match proves the
//! incremental rewrites right.

use std::net::IpAddr;
use std::sync::Arc;

use etherparse::{
    EtherType, Ethernet2Header, IcmpEchoHeader, Icmpv4Type, Icmpv6Type, IpDscp, IpEcn, IpHeaders,
    IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetHeaders, PacketBuilder, PacketHeaders,
    TcpHeader, TransportHeader, icmpv4, icmpv6,
};
use proptest::prelude::*;
use xvs_conntrack::{Addr, Af, ConnTable, DestTable, Fwd, Proto, TableConfig};
use xvs_sched::{SchedFlags, by_name};

use super::*;
use crate::service::{Dest, Gateway, Iface, MarkRule, Persistence, Service, Snapshot, SvcAddr};

// ---------------------------------------------------------------- the lab

const DIR_OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xd0, 0x01];
const DIR_IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xd0, 0x02];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
const OUT: u8 = 0;
const IN: u8 = 1;

const CLIENT4: [u8; 4] = [198, 51, 100, 7];
const VIP4: [u8; 4] = [192, 0, 2, 1];
const DIR_OUT4: [u8; 4] = [192, 0, 2, 254];
const DIR_IN4: [u8; 4] = [10, 0, 0, 1];
const CLIENT6: [u8; 16] = v6(0xc, 7);
const VIP6: [u8; 16] = v6(0xf, 1);
const DIR_OUT6: [u8; 16] = v6(0xf, 0xfe);
const DIR_IN6: [u8; 16] = v6(0xa, 1);

const fn v6(net: u8, host: u8) -> [u8; 16] {
    [
        0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, 0, host,
    ]
}

fn rs4(n: u8) -> [u8; 4] {
    [10, 0, 0, 10 + n]
}

fn rs6(n: u8) -> [u8; 16] {
    v6(0xa, 0x10 + n)
}

fn rs_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, n]
}

/// A real server: id (1-based, also the MAC/address suffix), family, port,
/// method, weight.
#[derive(Clone, Copy)]
struct Rs {
    n: u8,
    af: Af,
    port: u16,
    fwd: Fwd,
    weight: i32,
    resolved: bool,
}

fn rs(n: u8, af: Af, port: u16, fwd: Fwd) -> Rs {
    Rs {
        n,
        af,
        port,
        fwd,
        weight: 1,
        resolved: true,
    }
}

impl Rs {
    fn addr(&self) -> Addr {
        match self.af {
            Af::V4 => Addr::v4(rs4(self.n)),
            Af::V6 => Addr::v6(rs6(self.n)),
        }
    }
}

struct Svc {
    addr: SvcAddr,
    sched: &'static str,
    persistence: Option<Persistence>,
    dests: Vec<Rs>,
}

fn tcp_svc(vip: Addr, port: u16, dests: Vec<Rs>) -> Svc {
    Svc {
        addr: SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: vip,
            vport: port,
        },
        sched: "rr",
        persistence: None,
        dests,
    }
}

fn udp_svc(vip: Addr, port: u16, dests: Vec<Rs>) -> Svc {
    Svc {
        addr: SvcAddr::Tuple {
            proto: Proto::Udp,
            vaddr: vip,
            vport: port,
        },
        ..tcp_svc(vip, port, dests)
    }
}

struct Lab {
    pipe: Pipeline,
    snap: Snapshot,
    dests: Arc<DestTable>,
}

fn lab_with(services: Vec<Svc>, capacity: usize, cfg: Config) -> Lab {
    let dests = Arc::new(DestTable::new(64));
    let table = Arc::new(ConnTable::new(
        TableConfig {
            capacity,
            shards: 4,
            prealloc: false,
        },
        dests.clone(),
    ));
    let snap = snapshot(&services, &dests);
    Lab {
        pipe: Pipeline::new(table, cfg, 0),
        snap,
        dests,
    }
}

/// What the control plane publishes for `services`: destinations
/// configured in the table, schedulers updated, the two interfaces and the
/// gateway.
fn snapshot(services: &[Svc], dests: &DestTable) -> Snapshot {
    let mut svcs = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let list = s
            .dests
            .iter()
            .map(|r| {
                dests.configure(u32::from(r.n), r.weight, 0, 0);
                Dest {
                    id: u32::from(r.n),
                    addr: r.addr(),
                    port: r.port,
                    fwd: r.fwd,
                    weight: r.weight,
                    mac: r.resolved.then(|| rs_mac(r.n)),
                    iface: if r.fwd == Fwd::Route { OUT } else { IN },
                    svc: 0,
                }
            })
            .collect();
        let sched = by_name(s.sched, SchedFlags::NONE).unwrap();
        svcs.push(Arc::new(Service::new(
            i as u32,
            s.addr,
            s.persistence,
            list,
            sched,
        )));
    }
    let ifaces = vec![
        Iface {
            mac: DIR_OUT_MAC,
            mtu: 1500,
            addr4: Some(DIR_OUT4),
            addr6: Some(DIR_OUT6),
        },
        Iface {
            mac: DIR_IN_MAC,
            mtu: 1500,
            addr4: Some(DIR_IN4),
            addr6: Some(DIR_IN6),
        },
    ];
    let gw = Some(Gateway {
        iface: OUT,
        mac: GW_MAC,
    });
    Snapshot::new(svcs, &[], ifaces, 1).with_gateways([gw, gw])
}

fn lab(services: Vec<Svc>) -> Lab {
    lab_with(services, 1024, Config::default())
}

const HEADROOM_TEST: usize = 64;

impl Lab {
    /// Runs `input` through the pipeline; returns the verdict and the frame
    /// as it left.
    fn run(&mut self, now: u64, input: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; HEADROOM_TEST + input.len() + 64];
        buf[HEADROOM_TEST..HEADROOM_TEST + input.len()].copy_from_slice(input);
        let mut f = Frame::new(&mut buf, HEADROOM_TEST, input.len());
        let v = self.pipe.process(now, &self.snap, OUT, &mut f);
        let out = f.data().to_vec();
        (v, out)
    }
}

// ------------------------------------------------------------ the packets

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum L4 {
    Tcp(u8),
    Udp,
}

/// A TCP or UDP packet, described by its fields.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    smac: [u8; 6],
    dmac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    df: bool,
    tos: u8,
    l4: L4,
    sport: u16,
    dport: u16,
    payload: usize,
}

const SYN: L4 = L4::Tcp(tcp_flags::SYN);
const ACK: L4 = L4::Tcp(tcp_flags::ACK);

fn ip(a: Addr) -> IpAddr {
    a.to_ip()
}

fn client_pkt(af: Af, l4: L4, dport: u16) -> Pkt {
    let (src, dst) = match af {
        Af::V4 => (IpAddr::from(CLIENT4), IpAddr::from(VIP4)),
        Af::V6 => (IpAddr::from(CLIENT6), IpAddr::from(VIP6)),
    };
    Pkt {
        smac: GW_MAC,
        dmac: DIR_OUT_MAC,
        src,
        dst,
        ttl: 64,
        df: true,
        tos: 0xb9,
        l4,
        sport: 40000,
        dport,
        payload: 11,
    }
}

fn ip_headers(p: &Pkt, proto: IpNumber, payload_len: usize) -> IpHeaders {
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h =
                Ipv4Header::new(payload_len as u16, p.ttl, proto, s.octets(), d.octets()).unwrap();
            h.dont_fragment = p.df;
            h.dscp = IpDscp::try_new(p.tos >> 2).unwrap();
            h.ecn = IpEcn::try_new(p.tos & 3).unwrap();
            h.identification = 0x1234;
            h.header_checksum = h.calc_header_checksum();
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: p.tos,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: payload_len as u16,
                next_header: proto,
                hop_limit: p.ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => unreachable!("mixed families"),
    }
}

/// The frame of `p`, checksums computed by etherparse.
fn frame(p: &Pkt) -> Vec<u8> {
    let payload: Vec<u8> = (0..p.payload).map(|i| i as u8 ^ 0x5a).collect();
    let b = PacketBuilder::ethernet2(p.smac, p.dmac).ip(ip_headers(p, IpNumber::TCP, 0));
    let mut out = Vec::new();
    match p.l4 {
        L4::Tcp(flags) => {
            let mut h = TcpHeader::new(p.sport, p.dport, 1000, 65535);
            h.syn = flags & tcp_flags::SYN != 0;
            h.ack = flags & tcp_flags::ACK != 0;
            h.fin = flags & tcp_flags::FIN != 0;
            h.rst = flags & tcp_flags::RST != 0;
            if h.ack {
                h.acknowledgment_number = 1;
            }
            b.tcp_header(h).write(&mut out, &payload).unwrap();
        }
        L4::Udp => b.udp(p.sport, p.dport).write(&mut out, &payload).unwrap(),
    }
    out
}

/// Ethernet header bytes.
fn eth(dst: [u8; 6], src: [u8; 6], et: EtherType) -> Vec<u8> {
    Ethernet2Header {
        source: src,
        destination: dst,
        ether_type: et,
    }
    .to_bytes()
    .to_vec()
}

/// The IP packet of a frame (no padding here).
fn l3(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// An IP-in-IP frame: `inner` (a frame) in an outer header of the family of
/// `src`/`dst`, from the director's inside interface to real server `n`.
fn tunnel_frame(inner: &[u8], src: IpAddr, dst: IpAddr, ident: u16) -> Vec<u8> {
    let inner_ip = l3(inner);
    let (ver, ttl, tos, df) = match inner_ip[0] >> 4 {
        4 => (4, inner_ip[8], inner_ip[1], inner_ip[6] & 0x40 != 0),
        _ => (
            6,
            inner_ip[7],
            (u16::from_be_bytes([inner_ip[0], inner_ip[1]]) >> 4) as u8,
            false,
        ),
    };
    let proto = if ver == 4 {
        IpNumber::IPV4
    } else {
        IpNumber::IPV6
    };
    let mut out;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out = eth(rs_mac(1), DIR_IN_MAC, EtherType::IPV4);
            let mut h =
                Ipv4Header::new(inner_ip.len() as u16, ttl, proto, s.octets(), d.octets()).unwrap();
            h.dont_fragment = df;
            h.dscp = IpDscp::try_new(tos >> 2).unwrap();
            h.ecn = IpEcn::try_new(tos & 3).unwrap();
            h.identification = ident;
            h.header_checksum = h.calc_header_checksum();
            out.extend_from_slice(&h.to_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out = eth(rs_mac(1), DIR_IN_MAC, EtherType::IPV6);
            let h = Ipv6Header {
                traffic_class: tos,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: inner_ip.len() as u16,
                next_header: proto,
                hop_limit: ttl,
                source: s.octets(),
                destination: d.octets(),
            };
            out.extend_from_slice(&h.to_bytes());
        }
        _ => unreachable!(),
    }
    out.extend_from_slice(inner_ip);
    out
}

/// The ICMP error a director sends about `orig` (a frame), from `from`.
fn icmp_reply(orig: &[u8], from: IpAddr, err: IcmpError, ident: u16) -> Vec<u8> {
    // Back where it came from.
    let src_mac: [u8; 6] = orig[0..6].try_into().unwrap();
    let dst_mac: [u8; 6] = orig[6..12].try_into().unwrap();
    let ip = l3(orig);
    let mut out = Vec::new();
    match from {
        IpAddr::V4(f) => {
            let quote = &ip[..ip.len().min(576 - 28)];
            let to: [u8; 4] = ip[12..16].try_into().unwrap();
            let mut h = Ipv4Header::new(0, 64, IpNumber::ICMP, f.octets(), to).unwrap();
            h.dont_fragment = false;
            h.dscp = IpDscp::try_new(0x30).unwrap();
            h.identification = ident;
            let ty = match err {
                IcmpError::PortUnreachable => {
                    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
                }
                IcmpError::TooBig(mtu) => Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
                ),
                IcmpError::TtlExceeded => {
                    Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit)
                }
            };
            PacketBuilder::ethernet2(src_mac, dst_mac)
                .ip(IpHeaders::Ipv4(h, Default::default()))
                .icmpv4(ty)
                .write(&mut out, quote)
                .unwrap();
        }
        IpAddr::V6(f) => {
            let quote = &ip[..ip.len().min(1280 - 48)];
            let to: [u8; 16] = ip[8..24].try_into().unwrap();
            let ty = match err {
                IcmpError::PortUnreachable => {
                    Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port)
                }
                IcmpError::TooBig(mtu) => Icmpv6Type::PacketTooBig {
                    mtu: u32::from(mtu),
                },
                IcmpError::TtlExceeded => {
                    Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
                }
            };
            PacketBuilder::ethernet2(src_mac, dst_mac)
                .ipv6(f.octets(), to, 64)
                .icmpv6(ty)
                .write(&mut out, quote)
                .unwrap();
        }
    }
    out
}

/// An ICMP error about `quoted` (an IP packet, cut to 28 / 48 bytes + 8 as a
/// router would) from `src` to `dst`.
fn icmp_error_frame(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    quoted: &[u8],
    v6_type: &Icmpv6Type,
    v4_type: &Icmpv4Type,
) -> Vec<u8> {
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(smac, dmac);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b
            .ipv4(s.octets(), d.octets(), 64)
            .icmpv4(v4_type.clone())
            .write(&mut out, quoted)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => b
            .ipv6(s.octets(), d.octets(), 64)
            .icmpv6(*v6_type)
            .write(&mut out, quoted)
            .unwrap(),
        _ => unreachable!(),
    }
    out
}

/// Reads the IPv4 identification of the frame's IP header at 14.
fn ident_of(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[18], frame[19]])
}

// --------------------------------------------------------- the fixtures

/// Computes the expected output from the actual one (for the fields the
/// director picks, like an IPv4 identification).
type Expect = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// One step of a fixture: a frame in, the verdict and frame expected out.
struct Step {
    what: &'static str,
    input: Vec<u8>,
    verdict: Verdict,
    /// The expected output, computed from the actual output's IPv4
    /// identification where the director picks one.
    output: Option<Expect>,
}

fn step(what: &'static str, input: Vec<u8>, verdict: Verdict, output: Option<Vec<u8>>) -> Step {
    Step {
        what,
        input,
        verdict,
        output: output.map(|o| Box::new(move |_: &[u8]| o.clone()) as Expect),
    }
}

fn step_with(
    what: &'static str,
    input: Vec<u8>,
    verdict: Verdict,
    output: impl Fn(&[u8]) -> Vec<u8> + 'static,
) -> Step {
    Step {
        what,
        input,
        verdict,
        output: Some(Box::new(output)),
    }
}

fn run_steps(name: &str, lab: &mut Lab, steps: Vec<Step>) {
    for (i, s) in steps.into_iter().enumerate() {
        let (v, out) = lab.run(1_000 + i as u64, &s.input);
        assert_eq!(v, s.verdict, "{name}: step {i} ({}): verdict", s.what);
        if let Some(expect) = s.output {
            let want = expect(&out);
            assert_eq!(
                hex(&out),
                hex(&want),
                "{name}: step {i} ({}): output frame",
                s.what
            );
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const TX_OUT: Verdict = Verdict::Tx { iface: OUT };
const TX_IN: Verdict = Verdict::Tx { iface: IN };

fn dropped(d: Dropped) -> Verdict {
    Verdict::Drop(DropReason::Other(d))
}

fn vip(af: Af) -> Addr {
    match af {
        Af::V4 => Addr::v4(VIP4),
        Af::V6 => Addr::v6(VIP6),
    }
}

fn dir_in(af: Af) -> IpAddr {
    match af {
        Af::V4 => IpAddr::from(DIR_IN4),
        Af::V6 => IpAddr::from(DIR_IN6),
    }
}

/// DR in both families: the first SYN and the following segments go to the
/// same real server with only the MACs and TTL changed.
#[test]
fn dr_rewrites_macs_and_ttl_only() {
    for af in [Af::V4, Af::V6] {
        let mut lab = lab(vec![tcp_svc(
            vip(af),
            80,
            vec![rs(1, af, 80, Fwd::Route), rs(2, af, 80, Fwd::Route)],
        )]);
        let syn = client_pkt(af, SYN, 80);
        let ack = Pkt {
            payload: 100,
            ..client_pkt(af, ACK, 80)
        };
        let fwd = |p: Pkt| {
            frame(&Pkt {
                smac: DIR_OUT_MAC,
                dmac: rs_mac(1),
                ttl: p.ttl - 1,
                ..p
            })
        };
        let other = Pkt {
            sport: 40001,
            ..syn
        };
        let steps = vec![
            step("syn", frame(&syn), TX_OUT, Some(fwd(syn))),
            step("ack", frame(&ack), TX_OUT, Some(fwd(ack))),
            step(
                "second client goes to the next server",
                frame(&other),
                TX_OUT,
                Some(frame(&Pkt {
                    smac: DIR_OUT_MAC,
                    dmac: rs_mac(2),
                    ttl: 63,
                    ..other
                })),
            ),
        ];
        run_steps(&format!("dr {af:?}"), &mut lab, steps);
        let s = lab.pipe.stats().dest(1).unwrap();
        assert_eq!(
            (s.conns.get(), s.in_pkts.get(), s.out_pkts.get()),
            (1, 2, 0)
        );
    }
}

/// NAT in both families and both transports: requests get the real
/// server's address and port, replies the VIP's, checksums updated.
#[test]
fn nat_both_directions() {
    for af in [Af::V4, Af::V6] {
        for l4 in [SYN, L4::Udp] {
            let svc = match l4 {
                L4::Udp => udp_svc(vip(af), 53, vec![rs(1, af, 5353, Fwd::Masq)]),
                _ => tcp_svc(vip(af), 53, vec![rs(1, af, 5353, Fwd::Masq)]),
            };
            let mut lab = lab(vec![svc]);
            let req = client_pkt(af, l4, 53);
            let rs_addr = rs(1, af, 0, Fwd::Masq).addr().to_ip();
            let to_rs = Pkt {
                smac: DIR_IN_MAC,
                dmac: rs_mac(1),
                dst: rs_addr,
                dport: 5353,
                ttl: 63,
                ..req
            };
            let reply_l4 = match l4 {
                L4::Udp => L4::Udp,
                _ => L4::Tcp(tcp_flags::SYN | tcp_flags::ACK),
            };
            let reply = Pkt {
                smac: rs_mac(1),
                dmac: DIR_IN_MAC,
                src: rs_addr,
                dst: req.src,
                sport: 5353,
                dport: req.sport,
                l4: reply_l4,
                payload: 33,
                ..req
            };
            let to_client = Pkt {
                smac: DIR_OUT_MAC,
                dmac: GW_MAC,
                src: req.dst,
                sport: 53,
                ttl: 63,
                ..reply
            };
            let steps = vec![
                step("request", frame(&req), TX_IN, Some(frame(&to_rs))),
                step("reply", frame(&reply), TX_OUT, Some(frame(&to_client))),
            ];
            run_steps(&format!("nat {af:?} {l4:?}"), &mut lab, steps);
            let s = lab.pipe.stats().dest(1).unwrap();
            assert_eq!((s.in_pkts.get(), s.out_pkts.get()), (1, 1));
            assert_eq!(s.out_bytes.get(), l3(&frame(&reply)).len() as u64);
        }
    }
}

/// A UDP checksum of 0 (none, IPv4) stays 0 through NAT.
#[test]
fn nat_keeps_a_zero_udp_checksum() {
    let mut lab = lab(vec![udp_svc(
        vip(Af::V4),
        53,
        vec![rs(1, Af::V4, 5353, Fwd::Masq)],
    )]);
    let req = client_pkt(Af::V4, L4::Udp, 53);
    let mut input = frame(&req);
    input[14 + 20 + 6..14 + 20 + 8].fill(0);
    let mut want = frame(&Pkt {
        smac: DIR_IN_MAC,
        dmac: rs_mac(1),
        dst: IpAddr::from(rs4(1)),
        dport: 5353,
        ttl: 63,
        ..req
    });
    want[14 + 20 + 6..14 + 20 + 8].fill(0);
    run_steps(
        "udp csum 0",
        &mut lab,
        vec![step("request", input, TX_IN, Some(want))],
    );
}

/// TUN: 4in4, 6in4 (IPv4 real server of an IPv6 service), 6in6 and 4in6;
/// TOS and TTL copied, DF copied from IPv4 inner packets.
#[test]
fn tun_encapsulates_by_real_server_family() {
    for (svc_af, rs_af) in [
        (Af::V4, Af::V4),
        (Af::V6, Af::V4),
        (Af::V6, Af::V6),
        (Af::V4, Af::V6),
    ] {
        let mut lab = lab(vec![tcp_svc(
            vip(svc_af),
            80,
            vec![rs(1, rs_af, 80, Fwd::Tunnel)],
        )]);
        let syn = client_pkt(svc_af, SYN, 80);
        let inner = frame(&Pkt { ttl: 63, ..syn });
        let rs_addr = rs(1, rs_af, 0, Fwd::Tunnel).addr().to_ip();
        let name = format!("tun {svc_af:?} in {rs_af:?}");
        run_steps(
            &name,
            &mut lab,
            vec![step_with("syn", frame(&syn), TX_IN, move |out| {
                tunnel_frame(&inner, dir_in(rs_af), rs_addr, ident_of(out))
            })],
        );
    }
}

/// TUN path MTU: a packet that no longer fits once encapsulated gets
/// fragmentation needed (IPv4 with DF) or packet too big (IPv6) with the
/// MTU it must fit, from the VIP; IPv4 without DF is dropped and counted.
#[test]
fn tun_pmtu() {
    for af in [Af::V4, Af::V6] {
        let mut lab = lab(vec![udp_svc(
            vip(af),
            80,
            vec![rs(1, Af::V4, 80, Fwd::Tunnel)],
        )]);
        let hdr = if af == Af::V4 { 28 } else { 48 };
        let big = Pkt {
            payload: 1500 - hdr - 10,
            ..client_pkt(af, L4::Udp, 80)
        };
        let fits = Pkt {
            payload: 1500 - hdr - 20,
            sport: 40001,
            ..big
        };
        let input = frame(&big);
        let from = ip(vip(af));
        let mut steps = vec![
            step_with(
                "too big",
                input.clone(),
                Verdict::Reply(ReplyReason::TooBig),
                move |out| icmp_reply(&input, from, IcmpError::TooBig(1480), ident_of(out)),
            ),
            step("fits exactly", frame(&fits), TX_IN, None),
        ];
        if af == Af::V4 {
            let no_df = Pkt {
                df: false,
                sport: 40002,
                ..big
            };
            steps.push(step("no DF", frame(&no_df), dropped(Dropped::TooBig), None));
        }
        run_steps(&format!("pmtu {af:?}"), &mut lab, steps);
    }
}

/// TTL 1 is answered with time exceeded, for every method.
#[test]
fn ttl_exceeded() {
    for af in [Af::V4, Af::V6] {
        for fwd in [Fwd::Route, Fwd::Masq, Fwd::Tunnel] {
            let mut lab = lab(vec![tcp_svc(vip(af), 80, vec![rs(1, af, 80, fwd)])]);
            let p = Pkt {
                ttl: 1,
                ..client_pkt(af, SYN, 80)
            };
            let input = frame(&p);
            let from = ip(vip(af));
            run_steps(
                &format!("ttl {af:?} {fwd:?}"),
                &mut lab,
                vec![step_with(
                    "ttl 1",
                    input.clone(),
                    Verdict::Reply(ReplyReason::TtlExceeded),
                    move |out| icmp_reply(&input, from, IcmpError::TtlExceeded, ident_of(out)),
                )],
            );
        }
    }
}

/// No real server: ICMP port unreachable from the VIP (IPVS `ip_vs_leave`),
/// for TCP and UDP; also when the only server's MAC is not resolved yet.
#[test]
fn no_dest_is_port_unreachable() {
    for af in [Af::V4, Af::V6] {
        for (what, dests) in [
            ("empty", vec![]),
            (
                "unresolved",
                vec![Rs {
                    resolved: false,
                    ..rs(1, af, 80, Fwd::Route)
                }],
            ),
        ] {
            let mut lab = lab(vec![
                tcp_svc(vip(af), 80, dests.clone()),
                udp_svc(vip(af), 80, dests),
            ]);
            let mut steps = Vec::new();
            for l4 in [SYN, L4::Udp] {
                let input = frame(&client_pkt(af, l4, 80));
                let from = ip(vip(af));
                steps.push(step_with(
                    "no dest",
                    input.clone(),
                    Verdict::Reply(ReplyReason::NoDest),
                    move |out| icmp_reply(&input, from, IcmpError::PortUnreachable, ident_of(out)),
                ));
            }
            run_steps(&format!("no dest {af:?} {what}"), &mut lab, steps);
        }
    }
}

/// Quiescent (weight 0): the established connection keeps its server, new
/// ones go to the others; with every server quiescent, port unreachable.
#[test]
fn quiescent_dest() {
    let mut servers = vec![rs(1, Af::V4, 80, Fwd::Route), rs(2, Af::V4, 80, Fwd::Route)];
    let mut lab = lab(vec![tcp_svc(vip(Af::V4), 80, servers.clone())]);
    let first = client_pkt(Af::V4, SYN, 80);
    let (v, out) = lab.run(1, &frame(&first));
    assert_eq!((v, &out[0..6]), (TX_OUT, &rs_mac(1)[..]));
    // `-e -w 0`: the control plane publishes the new weight.
    servers[0].weight = 0;
    lab.snap = snapshot(&[tcp_svc(vip(Af::V4), 80, servers.clone())], &lab.dests);
    for port in 40001..40005 {
        let (v, out) = lab.run(
            2,
            &frame(&Pkt {
                sport: port,
                ..first
            }),
        );
        assert_eq!(
            (v, &out[0..6]),
            (TX_OUT, &rs_mac(2)[..]),
            "new conns avoid the quiescent server"
        );
    }
    let (v, out) = lab.run(3, &frame(&Pkt { l4: ACK, ..first }));
    assert_eq!(
        (v, &out[0..6]),
        (TX_OUT, &rs_mac(1)[..]),
        "established conn stays"
    );
    servers[1].weight = 0;
    lab.snap = snapshot(&[tcp_svc(vip(Af::V4), 80, servers)], &lab.dests);
    let (v, _) = lab.run(
        4,
        &frame(&Pkt {
            sport: 41000,
            ..first
        }),
    );
    assert_eq!(v, Verdict::Reply(ReplyReason::NoDest));
}

/// Persistence: rr would alternate, but every connection from the same
/// client network goes to the server of its template; another network gets
/// the next server.
#[test]
fn persistence_follows_the_template() {
    let mut svc = tcp_svc(
        vip(Af::V4),
        0,
        vec![rs(1, Af::V4, 0, Fwd::Route), rs(2, Af::V4, 0, Fwd::Route)],
    );
    svc.persistence = Some(Persistence {
        timeout_ms: 300_000,
        netmask: 24,
    });
    let mut lab = lab(vec![svc]);
    let base = client_pkt(Af::V4, SYN, 80);
    for (i, (client, port)) in [
        ([198, 51, 100, 7], 80),
        ([198, 51, 100, 8], 443),
        ([198, 51, 100, 7], 22),
    ]
    .into_iter()
    .enumerate()
    {
        let p = Pkt {
            src: IpAddr::from(client),
            sport: 40000 + i as u16,
            dport: port,
            ..base
        };
        let (v, out) = lab.run(10 + i as u64, &frame(&p));
        assert_eq!(
            (v, &out[0..6]),
            (TX_OUT, &rs_mac(1)[..]),
            "same /24, any port (port-zero service)"
        );
    }
    let p = Pkt {
        src: IpAddr::from([203, 0, 113, 9]),
        ..base
    };
    let (v, out) = lab.run(20, &frame(&p));
    assert_eq!(
        (v, &out[0..6]),
        (TX_OUT, &rs_mac(2)[..]),
        "another network, next server"
    );
    let s1 = lab.pipe.conns().dests().get(1).persistent();
    assert_eq!(s1, 1, "one template on server 1");
}

/// Fwmark: a classification rule marks a range of ports of a VIP network;
/// the fwmark service takes them (before a tuple service of the same VIP),
/// others fall through to the tuple service.
#[test]
fn fwmark_service() {
    let mut lab = lab(vec![
        tcp_svc(vip(Af::V4), 1500, vec![rs(2, Af::V4, 1500, Fwd::Route)]),
        Svc {
            addr: SvcAddr::Fwmark {
                mark: 5,
                af: Af::V4,
            },
            sched: "rr",
            persistence: None,
            dests: vec![rs(1, Af::V4, 0, Fwd::Route)],
        },
    ]);
    lab.snap = std::mem::take(&mut lab.snap).with_mark_rules(vec![MarkRule {
        proto: Proto::Tcp,
        daddr: Addr::v4([192, 0, 2, 0]),
        prefix_len: 24,
        port_min: 1000,
        port_max: 2000,
        mark: 5,
    }]);
    let p = client_pkt(Af::V4, SYN, 1500);
    let (v, out) = lab.run(1, &frame(&p));
    assert_eq!(
        (v, &out[0..6]),
        (TX_OUT, &rs_mac(1)[..]),
        "marked: fwmark service"
    );
    let p = Pkt {
        dst: IpAddr::from([192, 0, 2, 77]),
        sport: 40001,
        ..p
    };
    let (v, _) = lab.run(2, &frame(&p));
    assert_eq!(v, TX_OUT, "any VIP of the marked network");
    let p = Pkt {
        dport: 2001,
        sport: 40002,
        ..p
    };
    let (v, _) = lab.run(3, &frame(&p));
    assert_eq!(
        v,
        Verdict::Pass(PassReason::NoService),
        "port outside the rule, no tuple service"
    );
}

/// A full table drops new connections with a reason; established ones go on.
#[test]
fn table_full() {
    let mut lab = lab_with(
        vec![tcp_svc(
            vip(Af::V4),
            80,
            vec![rs(1, Af::V4, 80, Fwd::Route)],
        )],
        1,
        Config::default(),
    );
    let p = client_pkt(Af::V4, SYN, 80);
    assert_eq!(lab.run(1, &frame(&p)).0, TX_OUT);
    let other = Pkt { sport: 40001, ..p };
    assert_eq!(lab.run(2, &frame(&other)).0, dropped(Dropped::TableFull));
    assert_eq!(lab.run(3, &frame(&Pkt { l4: ACK, ..p })).0, TX_OUT);
    assert_eq!(lab.pipe.stats().dropped(Dropped::TableFull), 1);
}

/// What the director leaves to the kernel, and what it drops.
#[test]
fn pass_and_drop_reasons() {
    let mut lab = lab(vec![tcp_svc(
        vip(Af::V4),
        80,
        vec![rs(1, Af::V4, 80, Fwd::Route)],
    )]);
    let p = client_pkt(Af::V4, ACK, 80);
    assert_eq!(lab.run(1, &frame(&p)).0, Verdict::Reply(ReplyReason::Reset));
    let p = client_pkt(Af::V4, L4::Tcp(tcp_flags::RST | tcp_flags::ACK), 80);
    assert_eq!(lab.run(1, &frame(&p)).0, Verdict::Pass(PassReason::NotSyn));
    let p = client_pkt(Af::V4, SYN, 81);
    assert_eq!(
        lab.run(1, &frame(&p)).0,
        Verdict::Pass(PassReason::NoService)
    );
    let p = client_pkt(Af::V4, L4::Udp, 80);
    assert_eq!(
        lab.run(1, &frame(&p)).0,
        Verdict::Pass(PassReason::NoService)
    );
    // Echo request to the VIP.
    let mut echo = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, DIR_OUT_MAC)
        .ipv4(CLIENT4, VIP4, 64)
        .icmpv4(Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 1, seq: 1 }))
        .write(&mut echo, b"ping")
        .unwrap();
    assert_eq!(lab.run(1, &echo).0, Verdict::Pass(PassReason::IcmpNotError));
    // GRE to the VIP.
    let mut gre = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, DIR_OUT_MAC)
        .ip(ip_headers(&client_pkt(Af::V4, SYN, 80), IpNumber::GRE, 4))
        .write(&mut gre, IpNumber::GRE, &[0; 4])
        .unwrap();
    assert_eq!(lab.run(1, &gre).0, Verdict::Pass(PassReason::Untracked));
    // A first fragment of a SYN.
    let mut frag = frame(&client_pkt(Af::V4, SYN, 80));
    frag[14 + 6] |= 0x20; // more fragments
    refresh_ipv4_checksum(&mut frag);
    assert_eq!(lab.run(1, &frag).0, dropped(Dropped::Fragment));
    // sloppy_tcp: an ACK may start a connection, a RST may not.
    let mut lab = lab_with(
        vec![tcp_svc(
            vip(Af::V4),
            80,
            vec![rs(1, Af::V4, 80, Fwd::Route)],
        )],
        16,
        Config { sloppy_tcp: true },
    );
    assert_eq!(lab.run(1, &frame(&client_pkt(Af::V4, ACK, 80))).0, TX_OUT);
    let rst = Pkt {
        sport: 40001,
        ..client_pkt(Af::V4, L4::Tcp(tcp_flags::RST), 80)
    };
    assert_eq!(
        lab.run(1, &frame(&rst)).0,
        Verdict::Pass(PassReason::NotSyn)
    );
    let stats = lab.pipe.stats();
    assert_eq!((stats.rx.get(), stats.tx.get()), (2, 1));
    assert_eq!(stats.passed(PassReason::NotSyn), 1);
}

fn refresh_ipv4_checksum(frame: &mut [u8]) {
    frame[24..26].fill(0);
    let c = crate::wire::checksum::checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

/// ICMP errors about tracked connections: from the client side (quoting
/// VIP -> client) to the real server, with the quoted header NAT-ed back
/// for NAT; from a NAT real server (quoting client -> real server) to the
/// client with the VIP restored; unknown quotes go to the kernel.
#[test]
fn icmp_errors_follow_their_connection() {
    for af in [Af::V4, Af::V6] {
        for fwd in [Fwd::Masq, Fwd::Route, Fwd::Tunnel] {
            let port = if fwd == Fwd::Masq { 8080 } else { 80 };
            let mut lab = lab(vec![tcp_svc(vip(af), 80, vec![rs(1, af, port, fwd)])]);
            let syn = client_pkt(af, SYN, 80);
            assert!(matches!(lab.run(1, &frame(&syn)).0, Verdict::Tx { .. }));
            let rs_addr = rs(1, af, 0, fwd).addr().to_ip();
            // The client's side says the VIP's SYN-ACK did not fit.
            let synack_from_vip = Pkt {
                src: syn.dst,
                dst: syn.src,
                sport: 80,
                dport: syn.sport,
                l4: L4::Tcp(tcp_flags::SYN | tcp_flags::ACK),
                ..syn
            };
            let q = l3(&frame(&synack_from_vip)).to_vec();
            let qlen = if af == Af::V4 { 28 } else { 48 };
            let (v6t, v4t) = (
                Icmpv6Type::PacketTooBig { mtu: 1400 },
                Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
                ),
            );
            let router = match af {
                Af::V4 => IpAddr::from([198, 51, 100, 1]),
                Af::V6 => IpAddr::from(v6(0xc, 1)),
            };
            let input =
                icmp_error_frame(GW_MAC, DIR_OUT_MAC, router, syn.dst, &q[..qlen], &v6t, &v4t);
            let name = format!("icmp in {af:?} {fwd:?}");
            match fwd {
                Fwd::Route => {
                    let mut want = input.clone();
                    want[0..6].copy_from_slice(&rs_mac(1));
                    want[6..12].copy_from_slice(&DIR_OUT_MAC);
                    decrement_ttl(&mut want, 14, af);
                    run_steps(
                        &name,
                        &mut lab,
                        vec![step("error", input, TX_OUT, Some(want))],
                    );
                }
                Fwd::Masq => {
                    let natted = Pkt {
                        src: rs_addr,
                        sport: 8080,
                        ..synack_from_vip
                    };
                    let q2 = l3(&frame(&natted)).to_vec();
                    let mut q2 = q2[..qlen].to_vec();
                    // The quoted transport checksum is left alone.
                    let ck = if af == Af::V4 { 20 + 16 } else { 40 + 16 };
                    if qlen > ck + 1 {
                        q2[ck..ck + 2].copy_from_slice(&q[ck..ck + 2]);
                    }
                    let mut want =
                        icmp_error_frame(DIR_IN_MAC, rs_mac(1), router, rs_addr, &q2, &v6t, &v4t);
                    decrement_ttl(&mut want, 14, af);
                    run_steps(
                        &name,
                        &mut lab,
                        vec![step("error", input, TX_IN, Some(want))],
                    );
                }
                Fwd::Tunnel => {
                    let mut inner = input.clone();
                    decrement_ttl(&mut inner, 14, af);
                    run_steps(
                        &name,
                        &mut lab,
                        vec![step_with("error", input, TX_IN, move |out| {
                            tunnel_frame(&inner, dir_in(af), rs_addr, ident_of(out))
                        })],
                    );
                }
            }
        }
        // From a NAT real server: port unreachable about the NAT-ed request.
        let mut lab = lab(vec![udp_svc(vip(af), 53, vec![rs(1, af, 5353, Fwd::Masq)])]);
        let req = client_pkt(af, L4::Udp, 53);
        assert_eq!(lab.run(1, &frame(&req)).0, TX_IN);
        let rs_addr = rs(1, af, 0, Fwd::Masq).addr().to_ip();
        let natted = Pkt {
            dst: rs_addr,
            dport: 5353,
            ttl: 63,
            ..req
        };
        let q = l3(&frame(&natted)).to_vec();
        let (v6t, v4t) = (
            Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port),
            Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port),
        );
        let input = icmp_error_frame(rs_mac(1), DIR_IN_MAC, rs_addr, req.src, &q, &v6t, &v4t);
        let back = Pkt { ttl: 63, ..req };
        let mut qb = l3(&frame(&back)).to_vec();
        // The quoted transport checksum is left alone.
        let ck = if af == Af::V4 { 20 + 6 } else { 40 + 6 };
        qb[ck..ck + 2].copy_from_slice(&q[ck..ck + 2]);
        let mut want = icmp_error_frame(DIR_OUT_MAC, GW_MAC, req.dst, req.src, &qb, &v6t, &v4t);
        decrement_ttl(&mut want, 14, af);
        // An error about a connection nobody knows.
        let stranger = Pkt { sport: 1, ..natted };
        let q3 = l3(&frame(&stranger)).to_vec();
        let unknown = icmp_error_frame(rs_mac(1), DIR_IN_MAC, rs_addr, req.src, &q3, &v6t, &v4t);
        run_steps(
            &format!("icmp out {af:?}"),
            &mut lab,
            vec![
                step("error from rs", input, TX_OUT, Some(want)),
                step(
                    "unknown conn",
                    unknown,
                    Verdict::Pass(PassReason::IcmpNoConn),
                    None,
                ),
            ],
        );
    }
}

// ------------------------------------------------ hostile and malformed

fn sample_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for af in [Af::V4, Af::V6] {
        v.push(frame(&client_pkt(af, SYN, 80)));
        v.push(frame(&client_pkt(af, L4::Udp, 53)));
        let q = l3(&frame(&client_pkt(af, SYN, 80)))[..48].to_vec();
        v.push(icmp_error_frame(
            GW_MAC,
            DIR_OUT_MAC,
            ip(vip(af)),
            ip(vip(af)),
            &q[..if af == Af::V4 { 28 } else { 48 }],
            &Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port),
            &Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port),
        ));
    }
    v
}

fn every_method_lab() -> Lab {
    let mut svcs = Vec::new();
    for af in [Af::V4, Af::V6] {
        svcs.push(tcp_svc(
            vip(af),
            80,
            vec![
                rs(1, af, 80, Fwd::Route),
                rs(2, af, 8080, Fwd::Masq),
                rs(3, af, 80, Fwd::Tunnel),
            ],
        ));
        svcs.push(udp_svc(
            vip(af),
            53,
            vec![
                rs(4, af, 53, Fwd::Route),
                rs(5, af, 5353, Fwd::Masq),
                rs(6, af, 53, Fwd::Tunnel),
            ],
        ));
    }
    lab(svcs)
}

/// Every truncation of a valid frame is dropped with a parse reason.
#[test]
fn every_truncation_is_a_counted_drop() {
    let mut lab = every_method_lab();
    for f in sample_frames() {
        for len in 0..f.len() {
            let (v, _) = lab.run(1, &f[..len]);
            assert!(
                matches!(v, Verdict::Drop(DropReason::Malformed(_))),
                "truncated to {len} of {}: {v:?}",
                f.len()
            );
        }
    }
    let stats = lab.pipe.stats();
    let malformed: u64 = (0..crate::wire::ParseError::ALL.len())
        .map(|i| stats.drops[i].get())
        .sum();
    assert_eq!(malformed, stats.rx.get());
}

/// Verifies, with etherparse, the checksums of a frame the director sent:
/// IPv4 header, TCP/UDP (a zero UDP checksum over IPv4 is allowed), ICMP;
/// for a tunnel, the outer header and the inner packet.
fn assert_checksums_valid(frame: &[u8]) {
    let h = PacketHeaders::from_ethernet_slice(frame).expect("etherparse reads it");
    let payload = h.payload.slice();
    match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            if matches!(ip.protocol, IpNumber::IPV4 | IpNumber::IPV6) {
                let ip_payload = &frame[14 + ip.header_len()..];
                return assert_inner_valid(ip_payload);
            }
        }
        Some(NetHeaders::Ipv6(ip, _)) => {
            if matches!(ip.next_header, IpNumber::IPV4 | IpNumber::IPV6) {
                return assert_inner_valid(&frame[14 + 40..]);
            }
        }
        _ => panic!("not IP"),
    }
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(ip, payload).unwrap(),
                "TCP checksum"
            )
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv6(ip, payload).unwrap(),
                "TCP checksum"
            )
        }
        (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(u))) => {
            if u.checksum != 0 {
                assert_eq!(
                    u.checksum,
                    u.calc_checksum_ipv4(ip, payload).unwrap(),
                    "UDP checksum"
                )
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Udp(u))) => {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv6(ip, payload).unwrap(),
                "UDP checksum"
            )
        }
        (Some(NetHeaders::Ipv4(_, _)), Some(TransportHeader::Icmpv4(i))) => {
            let want = i.icmp_type.calc_checksum(payload);
            assert_eq!(i.checksum, want, "ICMP checksum")
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Icmpv6(i))) => {
            let want = i
                .icmp_type
                .calc_checksum(ip.source, ip.destination, payload)
                .unwrap();
            assert_eq!(i.checksum, want, "ICMPv6 checksum")
        }
        other => panic!("unexpected transport {other:?}"),
    }
}

fn assert_inner_valid(ip_packet: &[u8]) {
    let mut f = eth(
        [0; 6],
        [0; 6],
        if ip_packet[0] >> 4 == 4 {
            EtherType::IPV4
        } else {
            EtherType::IPV6
        },
    );
    f.extend_from_slice(ip_packet);
    assert_checksums_valid(&f);
}

/// A random TCP or UDP packet toward one of the lab's services.
fn any_pkt() -> impl Strategy<Value = Pkt> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        2u8..=255,
        any::<bool>(),
        any::<u8>(),
        0usize..1400,
        any::<[u8; 16]>(),
    )
        .prop_map(|(v6, udp, c4, sport, ttl, df, tos, payload, c6)| {
            let af = if v6 { Af::V6 } else { Af::V4 };
            let (l4, dport) = if udp { (L4::Udp, 53) } else { (SYN, 80) };
            Pkt {
                src: if v6 {
                    IpAddr::from(c6)
                } else {
                    IpAddr::from(c4)
                },
                sport,
                ttl,
                df,
                tos,
                payload,
                ..client_pkt(af, l4, dport)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// NAT out and back restores the original frame byte for byte.
    #[test]
    fn nat_out_and_back_restores(p in any_pkt(), rs_port in any::<u16>(), zero_udp in any::<bool>()) {
        let mut f = frame(&p);
        if zero_udp && p.l4 == L4::Udp && p.src.is_ipv4() {
            let at = 14 + 20 + 6;
            f[at..at + 2].fill(0);
        }
        let orig = f.clone();
        let info = crate::wire::parse(&f).unwrap();
        let rs_addr = if p.src.is_ipv4() { Addr::v4(rs4(1)) } else { Addr::v6(rs6(1)) };
        nat(&mut f, &info, Side::Dst, &rs_addr, rs_port);
        let info2 = crate::wire::parse(&f).unwrap();
        prop_assert_eq!(info2.dst, rs_addr);
        prop_assert_eq!(info2.dport, rs_port);
        assert_checksums_valid(&f);
        nat(&mut f, &info2, Side::Dst, &info.dst, info.dport);
        prop_assert_eq!(&f, &orig);
    }

    /// Through the whole pipeline: a request and its mirrored reply come
    /// back with the client's view intact, and every forwarded frame has
    /// valid checksums.
    #[test]
    fn forwarded_frames_have_valid_checksums(ps in proptest::collection::vec(any_pkt(), 1..24)) {
        let mut lab = every_method_lab();
        for p in ps {
            let (v, out) = lab.run(1, &frame(&p));
            if let Verdict::Tx { .. } | Verdict::Reply(_) = v {
                assert_checksums_valid(&out);
            }
            // The NAT reply: mirror what the real server got.
            if v == TX_IN && crate::wire::parse(&out).is_ok_and(|i| i.proto != ip_proto::IPIP && i.proto != ip_proto::IPV6) {
                let info = crate::wire::parse(&out).unwrap();
                let reply = Pkt {
                    smac: [2, 0, 0, 0, 0x10, 2],
                    dmac: DIR_IN_MAC,
                    src: info.dst.to_ip(),
                    dst: info.src.to_ip(),
                    sport: info.dport,
                    dport: info.sport,
                    ttl: 64,
                    l4: if p.l4 == L4::Udp { L4::Udp } else { L4::Tcp(tcp_flags::SYN | tcp_flags::ACK) },
                    ..p
                };
                let (v2, back) = lab.run(2, &frame(&reply));
                prop_assert_eq!(v2, TX_OUT);
                assert_checksums_valid(&back);
                let b = crate::wire::parse(&back).unwrap();
                prop_assert_eq!((b.src, b.sport, b.dst, b.dport), (info_addr(p.dst), p.dport, info_addr(p.src), p.sport));
            }
        }
    }

    /// Random bytes and random mutations of valid frames never panic, and
    /// every outcome is counted.
    #[test]
    fn hostile_frames_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        which in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let mut lab = every_method_lab();
        let _ = lab.run(1, &junk);
        let mut f = sample_frames()[which].clone();
        for (at, x) in flips {
            let n = f.len();
            f[at % n] ^= x;
        }
        let (v, out) = lab.run(2, &f);
        if let Verdict::Tx { .. } | Verdict::Reply(_) = v {
            prop_assert!(crate::wire::parse(&out).is_ok(), "what the director sends parses");
        }
        prop_assert_eq!(lab.pipe.stats().rx.get(), 2);
    }
}

fn info_addr(a: IpAddr) -> Addr {
    match a {
        IpAddr::V4(a) => Addr::v4(a.octets()),
        IpAddr::V6(a) => Addr::v6(a.octets()),
    }
}

/// With a sync master running, a worker offers the connections a backup
/// must learn: creation and state changes, in both NAT directions; with
/// none running, nothing is queued.
#[test]
fn sync_tap_offers_new_connections_and_state_changes() {
    let af = Af::V4;
    let mut lab = lab(vec![tcp_svc(vip(af), 80, vec![rs(1, af, 8080, Fwd::Masq)])]);
    let syn = client_pkt(af, SYN, 80);
    lab.run(0, &frame(&syn));
    assert_eq!(lab.pipe.sync_tap().drain(16, |_| {}), 0, "off: nothing");
    lab.pipe.sync_tap().set_on(true);
    let other = Pkt {
        sport: 40001,
        ..syn
    };
    lab.run(1, &frame(&other));
    let reply = Pkt {
        smac: rs_mac(1),
        dmac: DIR_IN_MAC,
        src: rs(1, af, 0, Fwd::Masq).addr().to_ip(),
        dst: other.src,
        sport: 8080,
        dport: other.sport,
        l4: L4::Tcp(tcp_flags::SYN | tcp_flags::ACK),
        ..other
    };
    lab.run(2, &frame(&reply));
    let ack = Pkt { l4: ACK, ..other };
    lab.run(3, &frame(&ack));
    lab.run(4, &frame(&ack));
    let mut got = Vec::new();
    lab.pipe
        .sync_tap()
        .drain(16, |k| got.push((k.cport, k.vport)));
    // Offered: the SYN (created) and the first ACK (SYN_RECV ->
    // ESTABLISHED, also the third packet); the server's SYN-ACK keeps
    // SYN_RECV and the fourth packet is neither a change nor a refresh.
    assert_eq!(got, [(40001, 80), (40001, 80)]);
}

/// A segment no connection takes and that may not start one gets the
/// reset the director's kernel would send (RFC 9293 3.10.7.1), in both
/// families: addresses, ports and MACs swapped, the sequence number from
/// the segment's acknowledgment, or an acknowledgment of what it carried.
#[test]
fn segments_of_no_connection_are_reset() {
    for af in [Af::V4, Af::V6] {
        let mut lab = lab(vec![tcp_svc(vip(af), 80, vec![rs(1, af, 80, Fwd::Route)])]);
        for (flags, seq, ack, rst_flags) in [
            // An ACK with 11 bytes: RST, seq = its ack (1).
            (tcp_flags::ACK, 1, 0, tcp_flags::RST),
            // A FIN without ACK: RST|ACK, ack = 1000 + 11 + 1.
            (tcp_flags::FIN, 0, 1012, tcp_flags::RST | tcp_flags::ACK),
        ] {
            let p = client_pkt(af, L4::Tcp(flags), 80);
            let (v, out) = lab.run(1, &frame(&p));
            assert_eq!(v, Verdict::Reply(ReplyReason::Reset), "{af:?} {flags:#x}");
            let sliced = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
            let Some(etherparse::LinkSlice::Ethernet2(e)) = &sliced.link else {
                panic!()
            };
            assert_eq!((e.destination(), e.source()), (p.smac, p.dmac));
            let (src, dst) = match &sliced.net {
                Some(etherparse::NetSlice::Ipv4(h)) => (
                    IpAddr::from(h.header().source_addr()),
                    IpAddr::from(h.header().destination_addr()),
                ),
                Some(etherparse::NetSlice::Ipv6(h)) => (
                    IpAddr::from(h.header().source_addr()),
                    IpAddr::from(h.header().destination_addr()),
                ),
                other => panic!("{other:?}"),
            };
            assert_eq!((src, dst), (p.dst, p.src));
            let Some(etherparse::TransportSlice::Tcp(t)) = &sliced.transport else {
                panic!()
            };
            assert_eq!((t.source_port(), t.destination_port()), (80, p.sport));
            assert_eq!((t.sequence_number(), t.acknowledgment_number()), (seq, ack));
            assert_eq!(
                (t.rst(), t.ack(), t.syn(), t.fin()),
                (true, rst_flags & tcp_flags::ACK != 0, false, false)
            );
            assert!(t.payload().is_empty());
            let expect = match &sliced.net {
                Some(etherparse::NetSlice::Ipv4(h)) => t
                    .to_header()
                    .calc_checksum_ipv4(&h.header().to_header(), &[])
                    .unwrap(),
                Some(etherparse::NetSlice::Ipv6(h)) => t
                    .to_header()
                    .calc_checksum_ipv6(&h.header().to_header(), &[])
                    .unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(t.checksum(), expect, "valid TCP checksum");
        }
    }
}
