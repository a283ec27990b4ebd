//! Malformed traffic through the live daemon: xvsd (NAT, IPv4 and IPv6
//! services) on the lab's director gets a corpus of raw frames from the
//! client namespace, sent by the lab's AF_XDP generator to the director's
//! MAC: truncated at every layer, bad IHL and lengths, IP options,
//! fragments, bad checksums, TTL 1, IPv6 extension headers, ICMP errors
//! quoting unknown flows, full-size and VLAN-tagged frames, garbage. Some
//! are for the director's kernel (the XDP program passes them), some are
//! valid and forwarded.
//!
//! Meanwhile keep-alive HTTP connections through the VIPs exchange
//! requests before, during and after; none may fail. Afterwards the daemon
//! still answers `xvsadm`, and every frame is accounted for, by reason:
//!
//! - frames shorter than an Ethernet header never arrive: the client's
//!   veth drops them (its TX drop counter);
//! - the frames the XDP program passes to the kernel are counted at the
//!   director's `eth0` ingress by an nftables `netdev` rule matching the
//!   corpus' own source MAC (frames the program redirects never reach that
//!   hook); one the kernel frees before that hook (a cut VLAN tag) is the
//!   difference between the XDP program's `passed` and every frame seen
//!   at the ingress of both interfaces;
//! - the frames xvsd drops, passes or answers with an ICMP error are its
//!   per-reason counters (`get_counters`), which the live connections
//!   never touch;
//! - the frames xvsd forwards are counted at the real servers' ingress by
//!   the corpus' DSCP (CS1; nothing else in the lab sets it).
//!
//! Each frame's expected outcome is written next to it; the counters must
//! match the sums exactly. The figures are printed (docs/hardening.md has
//! them).
//!
//! Needs root and the lab's tools: without them the test prints why and
//! passes, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use xvs_ctl::proto::{Request, Response};
use xvs_ctl::state::Counters;
use xvs_lab::traffic::{Cycle, GenConfig, Generator};
use xvs_lab::{Family, Mode, Topology};

const HTTP: u16 = 80;
const UDP: u16 = 5353;
/// Source MAC of every corpus frame: what the director's kernel-side
/// counter matches.
const MARK_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x99];
/// DSCP CS1 in the TOS / traffic class byte of every corpus packet: what
/// the real servers' counter matches.
const TOS: u8 = 0x20;
/// How long the corpus takes to send (so that live requests run during it).
const SEND_TIME: Duration = Duration::from_secs(2);

/// What must become of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Never arrives: the client's veth drops frames shorter than an
    /// Ethernet header (counted as its TX drops).
    Lost,
    /// The XDP program gives it to the director's kernel.
    Kernel,
    /// The XDP program gives it to the director's kernel, which frees it
    /// before its ingress hooks (a VLAN tag it cannot strip).
    KernelEarly,
    /// xvsd drops it for this reason.
    Dropped(&'static str),
    /// xvsd passes it (not its to handle) for this reason.
    Pass(&'static str),
    /// xvsd answers with an ICMP error for this reason.
    Reply(&'static str),
    /// xvsd forwards it to a real server.
    Forward,
}

use Outcome::*;

struct Case {
    what: &'static str,
    frame: Vec<u8>,
    expect: Outcome,
}

// ------------------------------------------------------------------ frames

fn checksum(data: &[u8]) -> u16 {
    xvs_lab::client::internet_checksum(data)
}

/// An IPv4 header with every field settable, wrong ones included.
#[derive(Clone)]
struct Ip4 {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    ident: u16,
    /// Flags and fragment offset (in 8-byte units), as on the wire.
    frag: u16,
    options: Vec<u8>,
    /// The IHL field; `None`: the real header length.
    ihl: Option<u8>,
    /// The total length field; `None`: the real packet length.
    total_len: Option<u16>,
    version: u8,
    bad_checksum: bool,
}

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;

impl Ip4 {
    fn new(src: IpAddr, dst: IpAddr, proto: u8) -> Ip4 {
        Ip4 {
            src: v4(src),
            dst: v4(dst),
            proto,
            ttl: 64,
            ident: 0x1234,
            frag: DF,
            options: Vec::new(),
            ihl: None,
            total_len: None,
            version: 4,
            bad_checksum: false,
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Ip4)) -> Ip4 {
        f(&mut self);
        self
    }

    fn build(&self, payload: &[u8]) -> Vec<u8> {
        let hl = 20 + self.options.len();
        assert_eq!(hl % 4, 0, "options come in 4-byte words");
        let mut h = vec![0u8; hl];
        h[0] = (self.version << 4) | self.ihl.unwrap_or((hl / 4) as u8);
        h[1] = TOS;
        let total = self.total_len.unwrap_or((hl + payload.len()) as u16);
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6..8].copy_from_slice(&self.frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src);
        h[16..20].copy_from_slice(&self.dst);
        h[20..].copy_from_slice(&self.options);
        let mut c = checksum(&h);
        if self.bad_checksum {
            c ^= 0x0101;
        }
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

/// An IPv6 header; `payload_len` `None`: the real one.
fn ip6(src: IpAddr, dst: IpAddr, next: u8, hop: u8, payload_len: Option<u16>, p: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60 | (TOS >> 4);
    h[1] = TOS << 4;
    let len = payload_len.unwrap_or(p.len() as u16);
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6] = next;
    h[7] = hop;
    h[8..24].copy_from_slice(&v6(src));
    h[24..40].copy_from_slice(&v6(dst));
    h.extend_from_slice(p);
    h
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("{a}: not IPv4"),
    }
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("{a}: not IPv6"),
    }
}

/// The transport checksum over the pseudo-header of `src`, `dst`.
fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, seg: &[u8]) -> u16 {
    let mut p = Vec::with_capacity(40 + seg.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        }
        _ => {
            p.extend_from_slice(&v6(src));
            p.extend_from_slice(&v6(dst));
            p.extend_from_slice(&(seg.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    p.extend_from_slice(seg);
    checksum(&p)
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// A TCP segment with a valid checksum (20-byte header, no options).
fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    if flags & ACK != 0 {
        t[8..12].copy_from_slice(&0x0a0b_0c0du32.to_be_bytes());
    }
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(data);
    let c = l4_checksum(src, dst, 6, &t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A UDP datagram with a valid checksum.
fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(data);
    let c = l4_checksum(src, dst, 17, &u);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// An ICMP message with a valid checksum: type, code, the 4 bytes after
/// the checksum, data.
fn icmp4(ty: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(data);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message with a valid checksum.
fn icmp6(src: IpAddr, dst: IpAddr, ty: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(data);
    let c = l4_checksum(src, dst, 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An 8-byte IPv6 options header (hop-by-hop or destination options: PadN).
fn opts6(next: u8) -> Vec<u8> {
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// An IPv6 fragment header: offset in 8-byte units, more fragments.
fn frag6(next: u8, offset: u16, more: bool) -> Vec<u8> {
    let off = (offset << 3) | u16::from(more);
    let mut h = vec![next, 0];
    h.extend_from_slice(&off.to_be_bytes());
    h.extend_from_slice(&0x0bad_cafeu32.to_be_bytes());
    h
}

/// Frames from the corpus' MAC to the director's.
struct Eth {
    dst: [u8; 6],
}

impl Eth {
    fn frame(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        self.tagged(&[], ethertype, payload)
    }

    /// With VLAN tags `(TPID, TCI)`, outermost first.
    fn tagged(&self, tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&MARK_MAC);
        for (tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ip4(&self, packet: &[u8]) -> Vec<u8> {
        self.frame(0x0800, packet)
    }

    fn ip6(&self, packet: &[u8]) -> Vec<u8> {
        self.frame(0x86dd, packet)
    }
}

/// splitmix64, for repeatable garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ------------------------------------------------------------------ corpus

/// Client source ports, one per frame that could start or hit a
/// connection, so that no frame meets another's connection.
struct Ports(u16);

impl Ports {
    fn next(&mut self) -> u16 {
        self.0 += 1;
        self.0
    }
}

/// What xvsd makes of a TCP packet that parsed, to a TCP VIP, on no
/// connection: a SYN (no ACK, RST or FIN) starts one and is forwarded, a
/// reset is dropped (passed), anything else is answered with a reset as the
/// local stack behind IPVS would.
fn tcp_outcome(flags: u8) -> Outcome {
    if flags & (SYN | ACK | RST | FIN) == SYN {
        Forward
    } else if flags & RST != 0 {
        Pass("not_syn")
    } else {
        Reply("reset")
    }
}

fn corpus(lab: &Topology) -> Vec<Case> {
    let e = Eth {
        dst: lab.director_outside().mac.octets(),
    };
    let (c4, c6) = (lab.client().addr(Family::V4), lab.client().addr(Family::V6));
    let (vip4, vip6) = (lab.vip(Family::V4), lab.vip(Family::V6));
    let (d4, d6) = (
        lab.director_outside().addr(Family::V4),
        lab.director_outside().addr(Family::V6),
    );
    let other: (IpAddr, IpAddr) = (
        "203.0.113.1".parse().unwrap(),
        "203.0.113.2".parse().unwrap(),
    );
    let mut port = Ports(1000);
    let mut out = Vec::new();
    let mut add = |what: &'static str, frame: Vec<u8>, expect: Outcome| {
        out.push(Case {
            what,
            frame,
            expect,
        })
    };
    let ack4 = |sport: u16| Ip4::new(c4, vip4, 6).build(&tcp(c4, vip4, sport, HTTP, ACK, &[]));
    let ack6 = |sport: u16| ip6(c6, vip6, 6, 64, None, &tcp(c6, vip6, sport, HTTP, ACK, &[]));

    // Truncated frames: a TCP ACK to the VIP cut at every length. The XDP
    // program needs the ports to steer; xvsd then finds the IP packet
    // shorter than its total length (payload length).
    let full = e.ip4(&ack4(port.next()));
    for len in 1..full.len() {
        let expect = if len < 14 {
            Lost
        } else if len < 14 + 20 + 4 {
            Kernel
        } else {
            Dropped("truncated_ipv4")
        };
        add("IPv4 frame cut short", full[..len].to_vec(), expect);
    }
    let full = e.ip6(&ack6(port.next()));
    for len in 1..full.len() {
        let expect = if len < 14 {
            Lost
        } else if len < 14 + 40 + 4 {
            Kernel
        } else {
            Dropped("truncated_ipv6")
        };
        add("IPv6 frame cut short", full[..len].to_vec(), expect);
    }
    // Transport headers cut short with consistent IP lengths.
    for k in 0..20 {
        let p = port.next();
        let seg = &tcp(c4, vip4, p, HTTP, ACK, &[])[..k];
        let expect = if k < 4 {
            Kernel
        } else {
            Dropped("truncated_tcp")
        };
        add(
            "TCP header cut short (IPv4)",
            e.ip4(&Ip4::new(c4, vip4, 6).build(seg)),
            expect,
        );
        let seg = &tcp(c6, vip6, p, HTTP, ACK, &[])[..k];
        add(
            "TCP header cut short (IPv6)",
            e.ip6(&ip6(c6, vip6, 6, 64, None, seg)),
            expect,
        );
    }
    for k in 0..8 {
        let seg = &udp(c4, vip4, port.next(), UDP, b"x")[..k];
        let expect = if k < 4 {
            Kernel
        } else {
            Dropped("truncated_udp")
        };
        add(
            "UDP header cut short",
            e.ip4(&Ip4::new(c4, vip4, 17).build(seg)),
            expect,
        );
    }
    for udp_len in [0u16, 7, 30] {
        let mut u = udp(c4, vip4, port.next(), UDP, b"0123456789");
        u[4..6].copy_from_slice(&udp_len.to_be_bytes());
        add(
            "UDP length below 8 or past the IP payload",
            e.ip4(&Ip4::new(c4, vip4, 17).build(&u)),
            Dropped("bad_udp_length"),
        );
    }
    for doff in [0u8, 4] {
        let mut t = tcp(c4, vip4, port.next(), HTTP, ACK, &[]);
        t[12] = doff << 4;
        add(
            "TCP data offset below 5",
            e.ip4(&Ip4::new(c4, vip4, 6).build(&t)),
            Dropped("bad_tcp_data_offset"),
        );
    }
    let mut t = tcp(c4, vip4, port.next(), HTTP, ACK, &[]);
    t[12] = 15 << 4;
    add(
        "TCP data offset past the segment",
        e.ip4(&Ip4::new(c4, vip4, 6).build(&t)),
        Dropped("truncated_tcp"),
    );

    // Versions, IHL, total length, header checksum.
    let p = port.next();
    let seg = tcp(c4, vip4, p, HTTP, ACK, &[]);
    add(
        "IPv4 EtherType, version 6",
        e.ip4(&Ip4::new(c4, vip4, 6).with(|h| h.version = 6).build(&seg)),
        Kernel,
    );
    add(
        "IPv6 EtherType, version 4",
        e.ip6(&Ip4::new(c4, vip4, 6).build(&seg)),
        Kernel,
    );
    for ihl in 0..5 {
        add(
            "IHL below 5",
            e.ip4(
                &Ip4::new(c4, vip4, 6)
                    .with(|h| h.ihl = Some(ihl))
                    .build(&seg),
            ),
            Kernel,
        );
    }
    // IHL 15 (40 bytes of options) but a total length of 40: the ports
    // behind the options steer it, the length is wrong.
    add(
        "total length below IHL",
        e.ip4(
            &Ip4::new(c4, vip4, 6)
                .with(|h| {
                    h.options = vec![1; 40];
                    h.total_len = Some(40);
                })
                .build(&seg),
        ),
        Dropped("bad_ipv4_total_len"),
    );
    add(
        "total length below 20",
        e.ip4(
            &Ip4::new(c4, vip4, 6)
                .with(|h| h.total_len = Some(10))
                .build(&seg),
        ),
        Dropped("bad_ipv4_total_len"),
    );
    for flags in [ACK, SYN] {
        let seg = tcp(c4, vip4, port.next(), HTTP, flags, &[]);
        add(
            "bad IPv4 header checksum",
            e.ip4(
                &Ip4::new(c4, vip4, 6)
                    .with(|h| h.bad_checksum = true)
                    .build(&seg),
            ),
            Dropped("bad_ipv4_checksum"),
        );
    }
    // TCP and UDP checksums are not the director's to check (IPVS does not
    // either): a SYN with a bad one is forwarded, the real server drops it.
    let mut t = tcp(c4, vip4, port.next(), HTTP, SYN, &[]);
    t[16] ^= 0xff;
    add(
        "SYN with a bad TCP checksum",
        e.ip4(&Ip4::new(c4, vip4, 6).build(&t)),
        Forward,
    );

    // IP options are walked over.
    for (what, opts, flags) in [
        ("IPv4 router alert option, ACK", vec![0x94, 4, 0, 0], ACK),
        ("IPv4 40 bytes of NOP options, ACK", vec![1; 40], ACK),
        ("IPv4 router alert option, SYN", vec![0x94, 4, 0, 0], SYN),
        (
            "IPv4 timestamp option, SYN",
            vec![0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            SYN,
        ),
    ] {
        let seg = tcp(c4, vip4, port.next(), HTTP, flags, &[]);
        add(
            what,
            e.ip4(&Ip4::new(c4, vip4, 6).with(|h| h.options = opts).build(&seg)),
            tcp_outcome(flags),
        );
    }
    let mut padded = e.ip4(&ack4(port.next()));
    padded.resize(200, 0xee);
    add("IPv4 ACK padded to 200 bytes", padded, Reply("reset"));

    // Fragments: not reassembled, dropped (first and non-first), but for
    // the kernel when they are not the director's (its own address).
    let first = |h: &mut Ip4| h.frag = MF;
    let later = |h: &mut Ip4| h.frag = 185;
    let seg = tcp(c4, vip4, port.next(), HTTP, SYN, &[0; 64]);
    add(
        "IPv4 first fragment, TCP SYN",
        e.ip4(&Ip4::new(c4, vip4, 6).with(first).build(&seg)),
        Dropped("fragment"),
    );
    add(
        "IPv4 non-first fragment, TCP",
        e.ip4(&Ip4::new(c4, vip4, 6).with(later).build(&[0xab; 64])),
        Dropped("fragment"),
    );
    let dg = udp(c4, vip4, port.next(), UDP, &[0; 64]);
    add(
        "IPv4 first fragment, UDP",
        e.ip4(&Ip4::new(c4, vip4, 17).with(first).build(&dg)),
        Dropped("fragment"),
    );
    add(
        "IPv4 non-first fragment, UDP",
        e.ip4(&Ip4::new(c4, vip4, 17).with(later).build(&[0xcd; 64])),
        Dropped("fragment"),
    );
    add(
        "IPv4 first fragment with 8 bytes of TCP",
        e.ip4(&Ip4::new(c4, vip4, 6).with(first).build(&seg[..8])),
        Dropped("truncated_tcp"),
    );
    add(
        "IPv4 fragment to the director's address",
        e.ip4(&Ip4::new(c4, d4, 17).with(later).build(&[0; 64])),
        Kernel,
    );
    let echo = icmp4(8, 0, 0x0001_0001, &[0; 64]);
    add(
        "IPv4 first fragment of an echo to the VIP",
        e.ip4(&Ip4::new(c4, vip4, 1).with(first).build(&echo)),
        Pass("icmp_not_error"),
    );
    let p = port.next();
    let seg = tcp(c6, vip6, p, HTTP, SYN, &[0; 64]);
    let mut chain = frag6(6, 0, true);
    chain.extend_from_slice(&seg);
    add(
        "IPv6 first fragment, TCP SYN",
        e.ip6(&ip6(c6, vip6, 44, 64, None, &chain)),
        Dropped("fragment"),
    );
    let mut chain = frag6(6, 100, false);
    chain.extend_from_slice(&[0xab; 64]);
    add(
        "IPv6 non-first fragment",
        e.ip6(&ip6(c6, vip6, 44, 64, None, &chain)),
        Dropped("fragment"),
    );
    let mut chain = frag6(6, 0, false);
    chain.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, ACK, &[]));
    add(
        "IPv6 atomic fragment, ACK",
        e.ip6(&ip6(c6, vip6, 44, 64, None, &chain)),
        Reply("reset"),
    );

    // TTL and hop limit 1 (and 0): a SYN starts a connection, whose
    // forwarding answers time exceeded; an ACK on no connection is passed
    // before any TTL check.
    for ttl in [1u8, 0] {
        let seg = tcp(c4, vip4, port.next(), HTTP, SYN, &[]);
        add(
            "IPv4 SYN, TTL 1 or 0",
            e.ip4(&Ip4::new(c4, vip4, 6).with(|h| h.ttl = ttl).build(&seg)),
            Reply("ttl_exceeded"),
        );
    }
    let seg = tcp(c4, vip4, port.next(), HTTP, ACK, &[]);
    add(
        "IPv4 ACK, TTL 1",
        e.ip4(&Ip4::new(c4, vip4, 6).with(|h| h.ttl = 1).build(&seg)),
        Reply("reset"),
    );
    let seg = tcp(c6, vip6, port.next(), HTTP, SYN, &[]);
    add(
        "IPv6 SYN, hop limit 1",
        e.ip6(&ip6(c6, vip6, 6, 1, None, &seg)),
        Reply("ttl_exceeded"),
    );

    // IPv6 extension headers.
    let ext_chain = |n: usize, flags: u8, sport: u16| {
        let mut p = Vec::new();
        for i in 0..n {
            p.extend_from_slice(&opts6(if i + 1 == n { 6 } else { 60 }));
        }
        p.extend_from_slice(&tcp(c6, vip6, sport, HTTP, flags, &[]));
        ip6(c6, vip6, if n == 0 { 6 } else { 60 }, 64, None, &p)
    };
    let mut hbh = opts6(60);
    hbh.extend_from_slice(&opts6(6));
    hbh.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, ACK, &[]));
    add(
        "IPv6 hop-by-hop + destination options, ACK",
        e.ip6(&ip6(c6, vip6, 0, 64, None, &hbh)),
        Reply("reset"),
    );
    let mut hbh = opts6(6);
    hbh.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, SYN, &[]));
    add(
        "IPv6 hop-by-hop, SYN",
        e.ip6(&ip6(c6, vip6, 0, 64, None, &hbh)),
        Forward,
    );
    let mut rt = vec![6, 0, 4, 0, 0, 0, 0, 0];
    rt.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, ACK, &[]));
    add(
        "IPv6 routing header (segments left 0), ACK",
        e.ip6(&ip6(c6, vip6, 43, 64, None, &rt)),
        Reply("reset"),
    );
    let mut ah = vec![6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    ah.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, ACK, &[]));
    add(
        "IPv6 AH, ACK",
        e.ip6(&ip6(c6, vip6, 51, 64, None, &ah)),
        Reply("reset"),
    );
    add(
        "IPv6 six destination options headers, ACK",
        e.ip6(&ext_chain(6, ACK, port.next())),
        Reply("reset"),
    );
    // The XDP program follows at most six extension headers.
    add(
        "IPv6 seven destination options headers",
        e.ip6(&ext_chain(7, ACK, port.next())),
        Kernel,
    );
    add(
        "IPv6 nine destination options headers",
        e.ip6(&ext_chain(9, SYN, port.next())),
        Kernel,
    );
    // A hop-by-hop header cut by the payload length, TCP behind it in
    // the frame (padding): steered by those ports, refused by xvsd.
    let mut cut = opts6(6);
    cut.extend_from_slice(&tcp(c6, vip6, port.next(), HTTP, ACK, &[]));
    add(
        "IPv6 hop-by-hop cut by the payload length",
        e.ip6(&ip6(c6, vip6, 0, 64, Some(4), &cut)),
        Dropped("truncated_ipv6_ext_header"),
    );
    add(
        "IPv6 ESP to the VIP",
        e.ip6(&ip6(c6, vip6, 50, 64, None, &[0x11; 40])),
        Kernel,
    );
    add(
        "IPv6 no next header to the VIP",
        e.ip6(&ip6(c6, vip6, 59, 64, None, &[])),
        Kernel,
    );

    // ICMP errors quoting flows the director does not track, and broken
    // ones.
    let quoted4 = |proto: u8, sport: u16, dport: u16| {
        let l4 = if proto == 6 {
            tcp(vip4, c4, sport, dport, SYN | ACK, &[])
        } else {
            udp(vip4, c4, sport, dport, b"answer")
        };
        Ip4::new(vip4, c4, proto).build(&l4)
    };
    for (what, ty, code, rest, proto) in [
        (
            "ICMP port unreachable quoting an unknown TCP flow",
            3,
            3,
            0,
            6,
        ),
        (
            "ICMP fragmentation needed quoting an unknown TCP flow",
            3,
            4,
            1400,
            6,
        ),
        (
            "ICMP time exceeded quoting an unknown UDP flow",
            11,
            0,
            0,
            17,
        ),
        ("ICMP source quench quoting an unknown TCP flow", 4, 0, 0, 6),
    ] {
        let q = quoted4(proto, if proto == 6 { HTTP } else { UDP }, 5555);
        add(
            what,
            e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(ty, code, rest, &q))),
            Pass("icmp_no_conn"),
        );
    }
    let q = quoted4(6, HTTP, 5556);
    add(
        "ICMP parameter problem quoting a VIP flow",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(12, 0, 0, &q))),
        Pass("icmp_not_error"),
    );
    let mut bad = icmp4(3, 3, 0, &q);
    bad[2] ^= 0xff;
    add(
        "ICMP error with a bad checksum",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&bad)),
        Dropped("bad_icmp_checksum"),
    );
    let q8 = &q[..20 + 4];
    add(
        "ICMP error quoting 4 bytes of TCP",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(3, 3, 0, q8))),
        Pass("icmp_no_conn"),
    );
    let mut inner6 = q.clone();
    inner6[0] = 0x65;
    add(
        "ICMP error quoting a version-6 header",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(3, 3, 0, &inner6))),
        Dropped("bad_icmp_inner"),
    );
    let mut ihl4 = q.clone();
    ihl4[0] = 0x44;
    add(
        "ICMP error quoting IHL 4",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(3, 3, 0, &ihl4))),
        Dropped("bad_icmp_inner"),
    );
    let mut ihl6 = q[..20].to_vec();
    ihl6[0] = 0x46;
    add(
        "ICMP error quoting IHL 6, 20 bytes",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(3, 3, 0, &ihl6))),
        Dropped("truncated_icmp_inner"),
    );
    let q_other = Ip4::new(other.0, other.1, 17).build(&udp(other.0, other.1, 53, 53, b"x"));
    add(
        "ICMP error quoting someone else's flow",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&icmp4(3, 3, 0, &q_other))),
        Kernel,
    );
    // The IP length leaves 4 bytes of ICMP; the rest of an error quoting
    // the VIP follows as padding (what the XDP program reads).
    let whole = icmp4(3, 3, 0, &q);
    let mut short = Ip4::new(c4, vip4, 1)
        .with(|h| h.total_len = Some(24))
        .build(&whole);
    short.truncate(20 + whole.len());
    add(
        "ICMP message of 4 bytes",
        e.ip4(&short),
        Dropped("truncated_icmp"),
    );
    add(
        "ICMP echo request to the VIP",
        e.ip4(&Ip4::new(c4, vip4, 1).build(&echo)),
        Kernel,
    );
    let quoted6 = {
        let l4 = tcp(vip6, c6, HTTP, 5557, SYN | ACK, &[]);
        ip6(vip6, c6, 6, 64, None, &l4)
    };
    for (what, ty, code, rest) in [
        ("ICMPv6 packet too big quoting an unknown flow", 2, 0, 1280),
        ("ICMPv6 port unreachable quoting an unknown flow", 1, 4, 0),
        ("ICMPv6 time exceeded quoting an unknown flow", 3, 0, 0),
        ("ICMPv6 parameter problem quoting an unknown flow", 4, 0, 0),
    ] {
        let m = icmp6(c6, vip6, ty, code, rest, &quoted6);
        add(
            what,
            e.ip6(&ip6(c6, vip6, 58, 64, None, &m)),
            Pass("icmp_no_conn"),
        );
    }
    let mut m = icmp6(c6, vip6, 1, 4, 0, &quoted6);
    m[3] ^= 0xff;
    add(
        "ICMPv6 error with a bad checksum",
        e.ip6(&ip6(c6, vip6, 58, 64, None, &m)),
        Dropped("bad_icmp_checksum"),
    );
    let mut q = quoted6.clone();
    q[0] = 0x45;
    let m = icmp6(c6, vip6, 1, 4, 0, &q);
    add(
        "ICMPv6 error quoting a version-4 header",
        e.ip6(&ip6(c6, vip6, 58, 64, None, &m)),
        Dropped("bad_icmp_inner"),
    );
    let m = icmp6(c6, vip6, 1, 4, 0, &quoted6[..30]);
    add(
        "ICMPv6 error quoting 30 bytes",
        e.ip6(&ip6(c6, vip6, 58, 64, None, &m)),
        Kernel,
    );
    let m = icmp6(c6, vip6, 128, 0, 0x0001_0001, &[0; 32]);
    add(
        "ICMPv6 echo request to the VIP",
        e.ip6(&ip6(c6, vip6, 58, 64, None, &m)),
        Kernel,
    );

    // Full-size frames (1514 bytes, 1518 tagged).
    let seg = tcp(c4, vip4, port.next(), HTTP, ACK, &[0x5a; 1460]);
    add(
        "1514-byte IPv4 ACK",
        e.ip4(&Ip4::new(c4, vip4, 6).build(&seg)),
        Reply("reset"),
    );
    let seg = tcp(c4, vip4, port.next(), HTTP, SYN, &[0x5a; 1460]);
    add(
        "1514-byte IPv4 SYN with data",
        e.ip4(&Ip4::new(c4, vip4, 6).build(&seg)),
        Forward,
    );
    let seg = tcp(c6, vip6, port.next(), HTTP, ACK, &[0x5a; 1440]);
    add(
        "1514-byte IPv6 ACK",
        e.ip6(&ip6(c6, vip6, 6, 64, None, &seg)),
        Reply("reset"),
    );
    let seg = tcp(c4, vip4, port.next(), HTTP, ACK, &[0x5a; 1460]);
    add(
        "1518-byte tagged IPv4 ACK",
        e.tagged(&[(0x8100, 7)], 0x0800, &Ip4::new(c4, vip4, 6).build(&seg)),
        Kernel,
    );

    // VLAN-tagged frames are the kernel's (xvsd serves untagged ports).
    let seg = tcp(c4, vip4, port.next(), HTTP, ACK, &[]);
    add(
        "802.1Q-tagged ACK",
        e.tagged(&[(0x8100, 7)], 0x0800, &Ip4::new(c4, vip4, 6).build(&seg)),
        Kernel,
    );
    let seg = tcp(c4, vip4, port.next(), HTTP, ACK, &[]);
    add(
        "802.1ad + 802.1Q-tagged ACK",
        e.tagged(
            &[(0x88a8, 1), (0x8100, 7)],
            0x0800,
            &Ip4::new(c4, vip4, 6).build(&seg),
        ),
        Kernel,
    );
    let seg = tcp(c4, vip4, port.next(), HTTP, SYN, &[]);
    add(
        "three VLAN tags, SYN",
        e.tagged(
            &[(0x88a8, 1), (0x8100, 7), (0x8100, 8)],
            0x0800,
            &Ip4::new(c4, vip4, 6).build(&seg),
        ),
        Kernel,
    );
    let seg = tcp(c6, vip6, port.next(), HTTP, ACK, &[]);
    add(
        "802.1Q-tagged IPv6 ACK",
        e.tagged(&[(0x8100, 7)], 0x86dd, &ip6(c6, vip6, 6, 64, None, &seg)),
        Kernel,
    );
    // A tagged SYN is not forwarded (it was, with its tag, before the
    // steering program left tagged frames to the kernel: docs/hardening.md).
    let seg = tcp(c4, vip4, port.next(), HTTP, SYN, &[]);
    add(
        "802.1Q-tagged SYN",
        e.tagged(&[(0x8100, 7)], 0x0800, &Ip4::new(c4, vip4, 6).build(&seg)),
        Kernel,
    );
    let mut cut_tag = e.tagged(&[(0x8100, 7)], 0x0800, &[]);
    cut_tag.truncate(16);
    add("VLAN tag cut short", cut_tag, KernelEarly);

    // For the kernel: the director's own addresses, other ports of the
    // VIP, other EtherTypes.
    let seg = tcp(c4, d4, port.next(), 22, SYN, &[]);
    add(
        "SYN to the director's own address",
        e.ip4(&Ip4::new(c4, d4, 6).build(&seg)),
        Kernel,
    );
    let seg = tcp(c6, d6, port.next(), 22, SYN, &[]);
    add(
        "IPv6 SYN to the director's own address",
        e.ip6(&ip6(c6, d6, 6, 64, None, &seg)),
        Kernel,
    );
    let seg = tcp(c4, vip4, port.next(), 81, SYN, &[]);
    add(
        "SYN to a port of the VIP with no service",
        e.ip4(&Ip4::new(c4, vip4, 6).build(&seg)),
        Kernel,
    );
    let dg = udp(c4, d4, port.next(), 9, b"discard");
    add(
        "UDP to the director's own address",
        e.ip4(&Ip4::new(c4, d4, 17).build(&dg)),
        Kernel,
    );
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    // From an unused address: the director's kernel learns the sender's
    // MAC, and the client's own address must keep the client's MAC.
    arp.extend_from_slice(&MARK_MAC);
    let mut unused = v4(c4);
    unused[3] = 99;
    arp.extend_from_slice(&unused);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&v4(vip4));
    add("ARP request for the VIP", e.frame(0x0806, &arp), Kernel);
    add(
        "LLDP",
        e.frame(0x88cc, &[0x02, 0x07, 0x04, 0, 0, 0, 0, 0, 1]),
        Kernel,
    );

    // Garbage: random bytes behind an Ethernet header (IPv4, IPv6 or
    // another EtherType); random TCP behind a valid IP header to the VIP
    // (what becomes of it is what the parser and the SYN rule say).
    let mut rng = Rng(0x5eed_1234);
    for i in 0..150 {
        let ty = [0x0800, 0x86dd, 0x0806, 0x1234][i % 4];
        let len = 1 + rng.below(1400);
        add(
            "random bytes after an Ethernet header",
            e.frame(ty, &rng.bytes(len)),
            Kernel,
        );
    }
    for i in 0..150 {
        let v6 = i % 2 == 1;
        let p = port.next();
        let len = 20 + rng.below(60);
        let mut t = rng.bytes(len);
        t[0..2].copy_from_slice(&p.to_be_bytes());
        t[2..4].copy_from_slice(&HTTP.to_be_bytes());
        let frame = if v6 {
            e.ip6(&ip6(c6, vip6, 6, 64, None, &t))
        } else {
            e.ip4(&Ip4::new(c4, vip4, 6).build(&t))
        };
        let expect = match xvs_dataplane::wire::parse(&frame) {
            Err(err) => Dropped(err.as_str()),
            Ok(info) => tcp_outcome(info.tcp_flags),
        };
        add("random TCP header and payload to the VIP", frame, expect);
    }
    out
}

// ------------------------------------------------------------------ the lab

fn config(lab: &Topology) -> String {
    let mut c = String::new();
    for f in [Family::V4, Family::V6] {
        let vip = vip_str(lab, f);
        for (p, port) in [("-t", HTTP), ("-u", UDP)] {
            c += &format!("-A {p} {vip}:{port} -s rr\n");
            for i in 0..lab.real_servers().len() {
                c += &format!(
                    "-a {p} {vip}:{port} -r {}:{port} -m -w 1\n",
                    rs_addr(lab, i, f)
                );
            }
        }
    }
    c
}

const COUNT_TABLE: &str = "xvs_malformed";

/// The counters outside xvsd: on the director's ingress (after the XDP
/// program), frames from the corpus' MAC and every frame of each
/// interface; on the real servers' ingress, the corpus' packets (DSCP CS1)
/// xvsd forwarded.
fn install_counters(lab: &Topology) {
    let mac = xvs_lab::MacAddr(MARK_MAC);
    lab.director()
        .nft(&format!(
            "table netdev {COUNT_TABLE} {{\n\
             \tcounter corpus {{ }}\n\
             \tcounter every {{ }}\n\
             \tchain eth0 {{\n\
             \t\ttype filter hook ingress device \"eth0\" priority 0; policy accept;\n\
             \t\tcounter name \"every\"\n\
             \t\tether saddr {mac} counter name \"corpus\"\n\
             \t}}\n\
             \tchain eth1 {{\n\
             \t\ttype filter hook ingress device \"eth1\" priority 0; policy accept;\n\
             \t\tcounter name \"every\"\n\
             \t}}\n\
             }}\n"
        ))
        .unwrap();
    for rs in lab.real_servers() {
        rs.nft(&format!(
            "table netdev {COUNT_TABLE} {{\n\
             \tcounter corpus {{ }}\n\
             \tcounter tagged {{ }}\n\
             \tchain in {{\n\
             \t\ttype filter hook ingress device \"eth0\" priority 0; policy accept;\n\
             \t\tvlan id 7 counter name \"tagged\"\n\
             \t\tip dscp cs1 counter name \"corpus\"\n\
             \t\tip6 dscp cs1 counter name \"corpus\"\n\
             \t}}\n\
             }}\n"
        ))
        .unwrap();
    }
}

fn read_counter(ns: &xvs_lab::Netns, name: &str) -> u64 {
    let out = ns
        .exec(&["nft", "list", "counter", "netdev", COUNT_TABLE, name])
        .unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packets in {out}"))
}

/// Every count the corpus is checked against, at one moment.
struct Tally {
    /// The client's veth: frames dropped on transmit.
    lost: u64,
    /// The director's ingress: frames from the corpus' MAC.
    kernel: u64,
    /// The director's ingress: every frame, both interfaces.
    ingress: u64,
    /// The XDP program's `passed` (both interfaces).
    xdp_passed: u64,
    /// The real servers' ingress: corpus packets.
    forwarded: u64,
    /// The real servers' ingress: frames tagged VLAN 7 (the corpus' tag).
    tagged: u64,
    /// xvsd's counters.
    xvsd: Counters,
}

impl Tally {
    /// Reads everything; the XDP and ingress counts are read until no
    /// frame reached the kernel meanwhile, so that they agree.
    fn read(lab: &Topology, d: &Xvsd) -> Tally {
        let dir = lab.director();
        loop {
            let ingress = read_counter(dir, "every");
            let xvsd = d.counters();
            let kernel = read_counter(dir, "corpus");
            if read_counter(dir, "every") != ingress {
                continue;
            }
            let lost = lab
                .client()
                .exec(&["cat", "/sys/class/net/eth0/statistics/tx_dropped"])
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            return Tally {
                lost,
                kernel,
                ingress,
                xdp_passed: xvsd.xdp.get("passed").copied().unwrap_or(0),
                forwarded: lab
                    .real_servers()
                    .iter()
                    .map(|r| read_counter(r, "corpus"))
                    .sum(),
                tagged: lab
                    .real_servers()
                    .iter()
                    .map(|r| read_counter(r, "tagged"))
                    .sum(),
                xvsd,
            };
        }
    }

    /// Frames xvsd dropped, passed or answered.
    fn handled(&self) -> u64 {
        let c = &self.xvsd;
        [&c.dropped, &c.passed, &c.replied]
            .iter()
            .flat_map(|m| m.values())
            .sum()
    }

    /// Frames the XDP program passed that the kernel freed before its
    /// ingress hooks.
    fn early(&self) -> u64 {
        self.xdp_passed - self.ingress
    }

    /// Corpus frames accounted for since `before`.
    fn since(&self, before: &Tally) -> u64 {
        (self.lost - before.lost)
            + (self.kernel - before.kernel)
            + (self.early() - before.early())
            + (self.forwarded - before.forwarded)
            + (self.handled() - before.handled())
    }
}

/// Keep-alive HTTP connections through the VIPs, each asking in turn
/// until stopped; the times of the answers and every failure.
struct Live {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<LiveResult>>,
}

/// What the live connections saw.
struct LiveResult {
    /// Per connection, when each answer came.
    times: Vec<Vec<Instant>>,
    /// Every failed request.
    failures: Vec<String>,
}

impl Live {
    fn start(lab: &Topology, per_family: usize) -> Live {
        let mut conns = Vec::new();
        for f in [Family::V4, Family::V6] {
            for _ in 0..per_family {
                conns.push(
                    lab.client()
                        .http_connect(lab.vip_addr(f, HTTP), Duration::from_secs(5))
                        .unwrap(),
                );
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut times = vec![Vec::new(); conns.len()];
            let mut failures = Vec::new();
            while !s.load(Ordering::Relaxed) {
                for (i, c) in conns.iter_mut().enumerate() {
                    match c.get("/", Duration::from_secs(3)) {
                        Ok(r) if r.status == 200 && r.text().starts_with("rs") => {
                            times[i].push(Instant::now())
                        }
                        Ok(r) => {
                            failures.push(format!("conn {i}: status {} {:?}", r.status, r.text()))
                        }
                        Err(e) => failures.push(format!("conn {i}: {e}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            LiveResult { times, failures }
        });
        Live {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> LiveResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn malformed_corpus_is_counted_and_live_flows_survive() {
    let t0 = Instant::now();
    let Some(lab) = lab(Mode::Nat, 2) else { return };
    let _echo = lab.start_echo(HTTP, UDP).unwrap();
    let d = Xvsd::start(&lab, &config(&lab));
    for f in [Family::V4, Family::V6] {
        first_answer(&lab, lab.vip_addr(f, HTTP));
    }
    install_counters(&lab);
    let cases = corpus(&lab);

    let live = Live::start(&lab, 3);
    std::thread::sleep(Duration::from_millis(500));
    let before = Tally::read(&lab, &d);
    let start = Instant::now();
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    let g = Generator::start(
        lab.client(),
        GenConfig {
            rate: cases.len() as f64 / SEND_TIME.as_secs_f64(),
            batch: 4,
            ..GenConfig::default()
        },
        Cycle::once(frames),
    )
    .unwrap();
    let report = g.wait(SEND_TIME * 3).unwrap();
    let sent_at = start..Instant::now();

    // Everything has arrived when the counts add up (or time is up).
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let t = Tally::read(&lab, &d);
        if t.since(&before) >= cases.len() as u64 || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(700));
    let live = live.finish();

    // The figures: expected and counted, by outcome and reason.
    let mut want: BTreeMap<Row, u64> = BTreeMap::new();
    for c in &cases {
        *want.entry(Row::of(c.expect)).or_default() += 1;
    }
    let mut got: BTreeMap<Row, u64> = BTreeMap::new();
    for (o, n) in [
        (Lost, after.lost - before.lost),
        (Kernel, after.kernel - before.kernel),
        (KernelEarly, after.early() - before.early()),
        (Forward, after.forwarded - before.forwarded),
    ] {
        got.insert(Row::of(o), n);
    }
    for (kind, a, b) in [
        (2, &after.xvsd.dropped, &before.xvsd.dropped),
        (3, &after.xvsd.passed, &before.xvsd.passed),
        (4, &after.xvsd.replied, &before.xvsd.replied),
    ] {
        for (r, n) in a {
            let n = n - b.get(r).copied().unwrap_or(0);
            if n > 0 {
                got.insert(Row(kind, r.clone()), n);
            }
        }
    }
    println!(
        "malformed corpus: {} frames in {:.2} s (generator: {} sent, {} completed, {} refused)",
        cases.len(),
        report.elapsed.as_secs_f64(),
        report.sent,
        report.completed,
        report.invalid
    );
    println!("| outcome | reason | expected | counted |");
    println!("|---|---|---:|---:|");
    let rows: std::collections::BTreeSet<&Row> = want.keys().chain(got.keys()).collect();
    for row in rows {
        let (w, g) = (want.get(row).unwrap_or(&0), got.get(row).unwrap_or(&0));
        println!("| {} | {} | {w} | {g} |", row.kind(), row.1);
    }
    let live_n: Vec<(usize, usize, usize)> = live
        .times
        .iter()
        .map(|t| {
            let before = t.iter().filter(|i| **i < sent_at.start).count();
            let during = t.iter().filter(|i| sent_at.contains(i)).count();
            (before, during, t.len() - before - during)
        })
        .collect();
    println!(
        "live connections: {} failures; answers before/during/after the corpus: {live_n:?}",
        live.failures.len()
    );
    println!("xvsd io: {:?}; xdp: {:?}", after.xvsd.io, after.xvsd.xdp);
    println!(
        "frames tagged VLAN 7 at the real servers: {}",
        after.tagged - before.tagged
    );

    // The daemon is up and answers xvsadm.
    let listing = d.cli_ok("-L -n");
    assert!(listing.contains(&vip_str(&lab, Family::V4)), "{listing}");
    assert_eq!(d.call(&Request::Ping), Response::Ok);

    // Live connections: no failure, answers in every phase.
    assert!(
        live.failures.is_empty(),
        "live connections failed: {:?}",
        live.failures
    );
    for (i, (b, du, a)) in live_n.iter().enumerate() {
        assert!(
            *b > 0 && *du > 0 && *a > 0,
            "conn {i}: answers {b}/{du}/{a}"
        );
    }

    // Every frame went out and is accounted for, by reason.
    assert_eq!(
        (report.sent, report.completed, report.invalid),
        (cases.len() as u64, cases.len() as u64, 0),
        "generator"
    );
    if want != got {
        let mut diff = Vec::new();
        for row in want.keys().chain(got.keys()) {
            let (w, g) = (want.get(row).unwrap_or(&0), got.get(row).unwrap_or(&0));
            if w != g {
                let cases: std::collections::BTreeSet<&str> = cases
                    .iter()
                    .filter(|c| Row::of(c.expect) == *row)
                    .map(|c| c.what)
                    .collect();
                diff.push(format!("{row:?}: expected {w}, counted {g} {cases:?}"));
            }
        }
        panic!("counters differ from the corpus:\n{}", diff.join("\n"));
    }
    assert!(after.xvsd.tx - before.xvsd.tx >= want[&Row::of(Forward)]);
    // No tagged frame reaches the real servers (docs/hardening.md).
    assert_eq!(
        after.tagged - before.tagged,
        0,
        "VLAN 7 at the real servers"
    );
    d.stop(&lab);
    println!("malformed_e2e: {:.1} s", t0.elapsed().as_secs_f64());
}

/// A row of the figures: outcome kind (in table order) and reason.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row(u8, String);

impl Row {
    fn of(o: Outcome) -> Row {
        match o {
            Lost => Row(0, "-".into()),
            Kernel => Row(1, "-".into()),
            KernelEarly => Row(1, "freed before its hooks".into()),
            Dropped(r) => Row(2, r.into()),
            Pass(r) => Row(3, r.into()),
            Reply(r) => Row(4, r.into()),
            Forward => Row(5, "-".into()),
        }
    }

    fn kind(&self) -> &'static str {
        [
            "lost (client veth)",
            "kernel (XDP pass)",
            "dropped",
            "passed",
            "replied",
            "forwarded",
        ][usize::from(self.0)]
    }
}
