//! The director the `pipeline` target runs frames through: a fixed
//! snapshot with DR, NAT and TUN services of both families, a small
//! connection table, and the invariants every verdict must satisfy.
//!
//! # The lab
//!
//! Interface 0 (`OUT`, MTU 1500) faces the clients and the gateway;
//! interface 1 (`IN`, MTU 1400, so NAT and tunnels meet their MTU checks
//! before DR does) faces the real servers of NAT and TUN services.
//!
//! | service | method | scheduler | real servers |
//! |---|---|---|---|
//! | TCP 192.0.2.1:80 | DR | rr | 1, 2 |
//! | TCP 192.0.2.1:8080 | NAT | wrr | 3 (port 80, weight 2), 4 (port 0: the client's) |
//! | UDP 192.0.2.1:53 | NAT | rr | 5 (port 5353) |
//! | TCP 192.0.2.1:0, persistent 300 s /24 | TUN | rr | 6 (IPv4), 7 (IPv6) |
//! | TCP 192.0.2.1:25 | - | rr | none: port unreachable |
//! | TCP [2001:db8:f::1]:80 | NAT | lc | 8 (port 8080) |
//! | UDP [2001:db8:f::1]:443 | TUN | mh | 9, 10 (not resolved) |
//! | fwmark 7: UDP 192.0.2.1:1000-2000, persistent 60 s | DR | sh | 11 |
//! | TCP [2001:db8:f::1]:22 | DR | wlc | 12 (weight 0: quiescent) |
//!
//! Real server `n` is 10.0.0.(10+n) or 2001:db8:a::(10+n) at MAC
//! 02:00:00:00:10:n. Clients are anywhere; the seeds use 198.51.100.7 and
//! 2001:db8:c::7.
//!
//! # Invariants, per frame ([`Director::step`])
//!
//! - `Pass`: the frame is untouched (same place, same bytes).
//! - `Tx`: on a known interface, from its MAC, to a real server's or the
//!   gateway's MAC; the frame parses again ([`wire::parse`]: IPv4 header and
//!   ICMP checksums right); the IP packet is the one received, TTL or hop
//!   limit one less: same length, family and protocol, Ethernet padding kept;
//!   a TCP or UDP checksum right before is right after (NAT updates it
//!   incrementally), a quoted IPv4 header the pipeline changed has a right
//!   checksum; in a tunnel, the outer header carries the inner packet
//!   byte for byte but for the TTL, with the inner TTL and TOS, and the
//!   padding is cut.
//! - `Reply`: an ICMP or ICMPv6 error back to the sender's MAC and address,
//!   parsing again, no longer than 576 / 1280 bytes of IP, quoting the start
//!   of the packet received; or (reason `reset`) a bare TCP reset from the
//!   segment's destination to its source, ports swapped, with a right
//!   checksum, answering a TCP segment that was not itself a reset.
//! - The table never holds more than its capacity.
//!
//! # At the end ([`Director::finish`])
//!
//! With the clock two days on, expiry empties the table and every real
//! server's active, inactive and persistent counts are back to 0 (nothing
//! leaked by any sequence of frames).

use std::sync::{Arc, OnceLock};

use xvs_conntrack::{Addr, Af, ConnTable, DestTable, Fwd, Proto, TableConfig};
use xvs_dataplane::pipeline::{self, Config, Frame, Pipeline, Verdict};
use xvs_dataplane::service::{
    Dest, Gateway, Iface, MarkRule, Persistence, Service, Snapshot, SvcAddr,
};
use xvs_dataplane::wire::{self, FragKind, PacketInfo, ip_proto};
use xvs_sched::{SchedFlags, by_name};

use crate::input::{self, CFG_SLOPPY_TCP, CFG_SYNC, Record};
use crate::reference;

/// The director's outside interface (clients, gateway).
pub const OUT: u8 = 0;
/// The director's inside interface (NAT and TUN real servers).
pub const IN: u8 = 1;
/// MAC of the outside interface.
pub const DIR_OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xd0, 0x01];
/// MAC of the inside interface.
pub const DIR_IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xd0, 0x02];
/// MAC of the gateway toward the clients.
pub const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
/// MTU of the outside interface.
pub const OUT_MTU: u16 = 1500;
/// MTU of the inside interface.
pub const IN_MTU: u16 = 1400;

/// The IPv4 VIP.
pub const VIP4: [u8; 4] = [192, 0, 2, 1];
/// The IPv6 VIP.
pub const VIP6: [u8; 16] = v6(0xf, 1);
/// The seeds' IPv4 client.
pub const CLIENT4: [u8; 4] = [198, 51, 100, 7];
/// The seeds' IPv6 client.
pub const CLIENT6: [u8; 16] = v6(0xc, 7);
const DIR_OUT4: [u8; 4] = [192, 0, 2, 254];
const DIR_IN4: [u8; 4] = [10, 0, 0, 1];
const DIR_OUT6: [u8; 16] = v6(0xf, 0xfe);
const DIR_IN6: [u8; 16] = v6(0xa, 1);

/// TCP, DR, real servers 1 and 2.
pub const DR_PORT: u16 = 80;
/// TCP, NAT, real servers 3 (port 80) and 4 (the client's port).
pub const NAT_PORT: u16 = 8080;
/// UDP, NAT, real server 5 (port 5353).
pub const UDP_NAT_PORT: u16 = 53;
/// TCP with no real server.
pub const NO_DEST_PORT: u16 = 25;
/// IPv6 TCP, NAT, real server 8 (port 8080).
pub const V6_NAT_PORT: u16 = 80;
/// IPv6 UDP, TUN, real servers 9 and 10 (unresolved).
pub const V6_TUN_PORT: u16 = 443;
/// IPv4 UDP ports marked [`FWMARK`].
pub const FWMARK_PORTS: std::ops::RangeInclusive<u16> = 1000..=2000;
/// The fwmark of the DR service of real server 11.
pub const FWMARK: u32 = 7;

/// Bytes of a UMEM frame.
pub const BUF_LEN: usize = 2048;
/// Where a received frame starts in its buffer: the pipeline's minimum
/// headroom, so that every push into the headroom is at its limit.
pub const HEADROOM: usize = pipeline::HEADROOM;
/// Connection table capacity: small, so that a table full is reachable.
pub const CAPACITY: usize = 16;

/// An IPv6 address of the lab: 2001:db8:`net`::`host`.
pub const fn v6(net: u8, host: u8) -> [u8; 16] {
    [
        0x20, 0x01, 0x0d, 0xb8, 0, net, 0, 0, 0, 0, 0, 0, 0, 0, 0, host,
    ]
}

/// IPv4 address of real server `n`.
pub const fn rs4(n: u8) -> [u8; 4] {
    [10, 0, 0, 10 + n]
}

/// IPv6 address of real server `n`.
pub const fn rs6(n: u8) -> [u8; 16] {
    v6(0xa, 0x10 + n)
}

/// MAC of real server `n`.
pub const fn rs_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, n]
}

/// Runs a whole `pipeline` input (see [`input`]), checking every verdict
/// and the table at the end; returns the verdicts.
pub fn run(data: &[u8]) -> Vec<Verdict> {
    let (cfg, records) = input::split(data);
    let mut d = Director::new(cfg);
    let verdicts = records.map(|r| d.step(r)).collect();
    d.finish();
    verdicts
}

/// One worker's pipeline over the lab's snapshot, and its frame buffer.
#[derive(Debug)]
pub struct Director {
    pipe: Pipeline,
    lab: &'static Lab,
    dests: Arc<DestTable>,
    now: u64,
    /// One UMEM frame, reused by every record as a worker reuses frames:
    /// what a frame leaves in the headroom stays for the next one.
    buf: Vec<u8>,
}

/// What every input shares: the snapshot (services, schedulers' tables,
/// interfaces), built once because a Maglev table takes a while; the
/// schedulers keep their per-worker state in the pipeline, and the
/// connection counts they read in the destination table, both made anew
/// for each input.
#[derive(Debug)]
pub struct Lab {
    snap: Snapshot,
    /// Every real server: id, weight.
    dests: Vec<(u32, i32)>,
    /// Real servers' and the gateway's MACs: where a frame may be sent.
    next_hops: Vec<[u8; 6]>,
}

/// A real server of the lab: id (also its address and MAC suffix),
/// family, port, method, weight, whether its MAC is known.
struct Rs(u8, Af, u16, Fwd, i32, bool);

/// The lab, built on first use.
pub fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(Lab::new)
}

impl Lab {
    fn new() -> Lab {
        let v4 = |vport| SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: Addr::v4(VIP4),
            vport,
        };
        let udp4 = |vport| SvcAddr::Tuple {
            proto: Proto::Udp,
            vaddr: Addr::v4(VIP4),
            vport,
        };
        let tcp6 = |vport| SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: Addr::v6(VIP6),
            vport,
        };
        let udp6 = |vport| SvcAddr::Tuple {
            proto: Proto::Udp,
            vaddr: Addr::v6(VIP6),
            vport,
        };
        let persist = |s: u64, netmask| {
            Some(Persistence {
                timeout_ms: s * 1000,
                netmask,
            })
        };
        use Af::{V4, V6};
        use Fwd::{Masq, Route, Tunnel};
        let services: Vec<(SvcAddr, Option<Persistence>, &str, Vec<Rs>)> = vec![
            (
                v4(DR_PORT),
                None,
                "rr",
                vec![
                    Rs(1, V4, DR_PORT, Route, 1, true),
                    Rs(2, V4, DR_PORT, Route, 1, true),
                ],
            ),
            (
                v4(NAT_PORT),
                None,
                "wrr",
                vec![Rs(3, V4, 80, Masq, 2, true), Rs(4, V4, 0, Masq, 1, true)],
            ),
            (
                udp4(UDP_NAT_PORT),
                None,
                "rr",
                vec![Rs(5, V4, 5353, Masq, 1, true)],
            ),
            (
                v4(0),
                persist(300, 24),
                "rr",
                vec![Rs(6, V4, 0, Tunnel, 1, true), Rs(7, V6, 0, Tunnel, 1, true)],
            ),
            (v4(NO_DEST_PORT), None, "rr", vec![]),
            (
                tcp6(V6_NAT_PORT),
                None,
                "lc",
                vec![Rs(8, V6, 8080, Masq, 1, true)],
            ),
            (
                udp6(V6_TUN_PORT),
                None,
                "mh",
                vec![
                    Rs(9, V6, V6_TUN_PORT, Tunnel, 1, true),
                    Rs(10, V6, V6_TUN_PORT, Tunnel, 1, false),
                ],
            ),
            (
                SvcAddr::Fwmark {
                    mark: FWMARK,
                    af: V4,
                },
                persist(60, 32),
                "sh",
                vec![Rs(11, V4, 0, Route, 1, true)],
            ),
            (tcp6(22), None, "wlc", vec![Rs(12, V6, 22, Route, 0, true)]),
        ];
        let mut svcs = Vec::new();
        let mut ids = Vec::new();
        let mut next_hops = vec![GW_MAC];
        for (i, (addr, persistence, sched, rss)) in services.into_iter().enumerate() {
            let list = rss
                .iter()
                .map(|&Rs(n, af, port, fwd, weight, resolved)| {
                    ids.push((u32::from(n), weight));
                    next_hops.push(rs_mac(n));
                    Dest {
                        id: u32::from(n),
                        addr: match af {
                            V4 => Addr::v4(rs4(n)),
                            V6 => Addr::v6(rs6(n)),
                        },
                        port,
                        fwd,
                        weight,
                        mac: resolved.then(|| rs_mac(n)),
                        iface: if fwd == Route { OUT } else { IN },
                        svc: 0,
                    }
                })
                .collect();
            let sched = by_name(sched, SchedFlags::NONE).expect("the lab's schedulers exist");
            svcs.push(Arc::new(Service::new(
                i as u32,
                addr,
                persistence,
                list,
                sched,
            )));
        }
        let ifaces = vec![
            Iface {
                mac: DIR_OUT_MAC,
                mtu: OUT_MTU,
                addr4: Some(DIR_OUT4),
                addr6: Some(DIR_OUT6),
            },
            Iface {
                mac: DIR_IN_MAC,
                mtu: IN_MTU,
                addr4: Some(DIR_IN4),
                addr6: Some(DIR_IN6),
            },
        ];
        let gw = Some(Gateway {
            iface: OUT,
            mac: GW_MAC,
        });
        let snap = Snapshot::new(svcs, &[], ifaces, 1)
            .with_gateways([gw, gw])
            .with_mark_rules(vec![MarkRule {
                proto: Proto::Udp,
                daddr: Addr::v4(VIP4),
                prefix_len: 32,
                port_min: *FWMARK_PORTS.start(),
                port_max: *FWMARK_PORTS.end(),
                mark: FWMARK,
            }]);
        Lab {
            snap,
            dests: ids,
            next_hops,
        }
    }
}

impl Director {
    /// The lab with the configuration byte `cfg` (see [`input`]).
    pub fn new(cfg: u8) -> Director {
        let lab = lab();
        let dests = Arc::new(DestTable::new(64));
        for &(id, weight) in &lab.dests {
            dests.configure(id, weight, 0, 0);
        }
        let table = Arc::new(ConnTable::new(
            TableConfig {
                capacity: CAPACITY,
                shards: 1,
                prealloc: false,
            },
            dests.clone(),
        ));
        let cfg_pipe = Config {
            sloppy_tcp: cfg & CFG_SLOPPY_TCP != 0,
        };
        let pipe = Pipeline::new(table, cfg_pipe, 0);
        pipe.sync_tap().set_on(cfg & CFG_SYNC != 0);
        Director {
            pipe,
            lab,
            dests,
            now: 1_000,
            // Not zeros: the pipeline must not rely on a clean buffer.
            buf: vec![0xa5; BUF_LEN],
        }
    }

    /// Processes one record's frame, checks the verdict and returns it.
    pub fn step(&mut self, rec: Record<'_>) -> Verdict {
        self.now += rec.advance_ms();
        if rec.expire() {
            self.pipe.conns().expire(self.now, 64);
        }
        let len = rec.frame.len().min(BUF_LEN - HEADROOM);
        let before = &rec.frame[..len];
        self.buf[HEADROOM..HEADROOM + len].copy_from_slice(before);
        let rx = rec.rx_iface();
        let mut f = Frame::new(&mut self.buf, HEADROOM, len);
        let v = self.pipe.process(self.now, &self.lab.snap, rx, &mut f);
        assert!(f.start() + f.len() <= BUF_LEN);
        let out = f.data();
        match v {
            Verdict::Pass(r) => {
                assert_eq!(
                    (f.start(), out),
                    (HEADROOM, before),
                    "Pass({r:?}) changed the frame"
                );
            }
            Verdict::Drop(_) => {}
            Verdict::Tx { iface } => check_tx(self.lab, before, iface, out),
            Verdict::Reply(r) => check_reply(before, out, r),
        }
        assert!(self.pipe.conns().len() <= CAPACITY);
        // The sync thread's side: take what was offered.
        self.pipe.sync_tap().drain(usize::MAX, |_| {});
        v
    }

    /// Expires everything and checks that nothing is left.
    pub fn finish(mut self) {
        let conns = self.pipe.conns().clone();
        for _ in 0..4 {
            // Two days: beyond every timeout (TCP's longest is 15 minutes,
            // the templates' 5), and a template outlives its connections
            // by one pass at most.
            self.now += 2 * 86_400_000;
            conns.expire(self.now, usize::MAX);
        }
        assert_eq!(conns.len(), 0, "entries left after every timeout");
        for &(id, _) in &self.lab.dests {
            let s = self.dests.get(id);
            assert_eq!(
                (s.active(), s.inactive(), s.persistent()),
                (0, 0, 0),
                "real server {id} still counts connections with an empty table"
            );
        }
    }
}

/// Checks a frame forwarded on `iface`: `before` as received, `out` as
/// sent.
fn check_tx(lab: &Lab, before: &[u8], iface: u8, out: &[u8]) {
    let b = wire::parse(before).expect("a forwarded frame parsed when received");
    let ifc = lab
        .snap
        .ifaces
        .get(usize::from(iface))
        .unwrap_or_else(|| panic!("Tx on unknown interface {iface}"));
    assert_eq!(out[6..12], ifc.mac, "source MAC is not the interface's");
    assert!(
        lab.next_hops.iter().any(|m| out[0..6] == *m),
        "destination MAC {:02x?} is no real server's nor the gateway's",
        &out[0..6]
    );
    let o = wire::parse(out).unwrap_or_else(|e| panic!("forwarded frame does not parse: {e}"));
    check_parsed_checksums(out, &o);
    assert_eq!(o.l3_off, b.l3_off, "VLAN tags changed");
    assert_eq!(o.vlan_tci, b.vlan_tci, "VLAN tags changed");
    let original = &before[b.l3_off..b.l3_off + b.ip_len];
    let tunnelled = matches!(o.proto, ip_proto::IPIP | ip_proto::IPV6)
        && !matches!(b.proto, ip_proto::IPIP | ip_proto::IPV6);
    if tunnelled {
        // The inner packet is the one received, TTL one less; the outer
        // header copies its TTL and TOS; the padding is cut.
        assert_eq!(o.l4_len, b.ip_len, "tunnel payload is not the packet");
        assert_eq!(out.len(), o.l4_off + b.ip_len, "tunnel frame length");
        assert_eq!((o.ttl, o.tos), (b.ttl - 1, b.tos), "outer TTL / TOS");
        let inner = &out[o.l4_off..];
        same_but_ttl(original, inner, b.af);
        // Parsed as a frame of its own: header checksum, lengths.
        let mut f = out[..12].to_vec();
        f.extend_from_slice(&ethertype(b.af).to_be_bytes());
        f.extend_from_slice(inner);
        let i = wire::parse(&f).unwrap_or_else(|e| panic!("tunnelled packet does not parse: {e}"));
        check_parsed_checksums(&f, &i);
        assert_eq!((i.af, i.proto, i.ip_len), (b.af, b.proto, b.ip_len));
    } else {
        assert_eq!(out.len(), before.len(), "frame length changed");
        assert_eq!(
            (o.af, o.proto, o.ip_len, o.frag),
            (b.af, b.proto, b.ip_len, b.frag),
            "forwarded packet changed family, protocol or length"
        );
        assert_eq!(o.ttl, b.ttl - 1, "TTL not decremented once");
        assert_eq!(
            out[b.l3_off + b.ip_len..],
            before[b.l3_off + b.ip_len..],
            "padding changed"
        );
        if l4_checksum_ok(before, &b) == Some(true) {
            assert_eq!(
                l4_checksum_ok(out, &o),
                Some(true),
                "a right transport checksum went wrong"
            );
        }
        if let (Some(bi), Some(oi)) = (b.inner, o.inner)
            && bi.af == Af::V4
        {
            let was = &before[bi.l3_off..bi.l4_off];
            let is = &out[oi.l3_off..oi.l4_off];
            let ok = reference::ipv4_header_ok;
            if was != is || ok(was) {
                assert!(ok(is), "quoted IPv4 header checksum wrong");
            }
        }
    }
}

/// Checks an ICMP error the director built from `before`.
fn check_reply(before: &[u8], out: &[u8], why: pipeline::ReplyReason) {
    if why == pipeline::ReplyReason::Reset {
        return check_reset(before, out);
    }
    let b = wire::parse(before).expect("an answered frame parsed when received");
    let o = wire::parse(out).unwrap_or_else(|e| panic!("ICMP error ({why:?}) does not parse: {e}"));
    check_parsed_checksums(out, &o);
    let (proto, max) = match b.af {
        Af::V4 => (ip_proto::ICMP, 576),
        Af::V6 => (ip_proto::ICMPV6, 1280),
    };
    assert_eq!((o.af, o.proto), (b.af, proto), "not an ICMP error");
    assert_eq!(o.dst, b.src, "not sent back to the sender");
    assert_eq!(
        out[0..6],
        before[6..12],
        "not sent back to the sender's MAC"
    );
    assert_eq!(out[6..12], before[0..6], "not sent from the MAC it came to");
    assert_eq!(o.l3_off, b.l3_off, "VLAN tags changed");
    assert!(o.ip_len <= max, "ICMP error of {} bytes", o.ip_len);
    assert_eq!(out.len(), o.l3_off + o.ip_len, "ICMP error frame length");
    let quote = &out[o.l4_off + wire::icmp::HEADER_LEN..];
    assert_eq!(
        quote,
        &before[b.l3_off..b.l3_off + quote.len()],
        "the quote is not the packet received"
    );
    assert!(o.inner.is_some(), "the quote was not read back");
}

/// Checks the reset the director built for the TCP segment in `before`.
fn check_reset(before: &[u8], out: &[u8]) {
    let b = wire::parse(before).expect("a reset segment parsed when received");
    let o = wire::parse(out).unwrap_or_else(|e| panic!("reset does not parse: {e}"));
    assert_eq!((b.proto, o.proto), (ip_proto::TCP, ip_proto::TCP));
    assert_eq!(b.tcp_flags & 0x04, 0, "a reset answered a reset");
    assert_eq!(o.tcp_flags & 0x04, 0x04, "not a reset");
    assert_eq!((o.src, o.dst), (b.dst, b.src), "addresses not swapped");
    assert_eq!((o.sport, o.dport), (b.dport, b.sport), "ports not swapped");
    assert_eq!(
        out[0..6],
        before[6..12],
        "not sent back to the sender's MAC"
    );
    assert_eq!(out[6..12], before[0..6], "not sent from the MAC it came to");
    assert_eq!(o.l4_len, 20, "a reset carries no options or data");
    assert_eq!(out.len(), o.l4_off + 20, "reset frame length");
    check_parsed_checksums(out, &o);
    assert_eq!(l4_checksum_ok(out, &o), Some(true), "reset TCP checksum");
}

/// Whether the TCP or UDP checksum of a whole (not fragmented) segment is
/// right, by the reference sum; `None` for other packets.
fn l4_checksum_ok(frame: &[u8], info: &PacketInfo) -> Option<bool> {
    if info.frag != FragKind::None || !matches!(info.proto, ip_proto::TCP | ip_proto::UDP) {
        return None;
    }
    let seg = &frame[info.l4_off..info.l4_off + info.l4_len];
    Some(reference::transport_ok(
        &frame[info.l3_off..],
        info.proto,
        seg,
    ))
}

/// Checks by the reference sums what [`wire::parse`] accepted: the IPv4
/// header checksum, and an ICMP or ICMPv6 message's.
pub fn check_parsed_checksums(frame: &[u8], info: &PacketInfo) {
    let ip = &frame[info.l3_off..];
    if info.af == Af::V4 {
        assert!(
            reference::ipv4_header_ok(&ip[..info.l4_off - info.l3_off]),
            "accepted IPv4 header with a wrong checksum"
        );
    }
    if info.frag != FragKind::None {
        return;
    }
    let msg = &frame[info.l4_off..info.l4_off + info.l4_len];
    match (info.af, info.proto) {
        (Af::V4, ip_proto::ICMP) => {
            assert!(
                reference::icmpv4_ok(msg),
                "accepted ICMP with a wrong checksum"
            )
        }
        (Af::V6, ip_proto::ICMPV6) => assert!(
            reference::transport_ok(ip, ip_proto::ICMPV6, msg),
            "accepted ICMPv6 with a wrong checksum"
        ),
        _ => {}
    }
}

/// `is` is the IP packet `was` but for a TTL (hop limit) one less and, for
/// IPv4, the header checksum.
fn same_but_ttl(was: &[u8], is: &[u8], af: Af) {
    assert_eq!(was.len(), is.len(), "tunnelled packet length");
    let ttl = match af {
        Af::V4 => 8,
        Af::V6 => 7,
    };
    assert_eq!(is[ttl], was[ttl].wrapping_sub(1), "inner TTL");
    for (i, (w, n)) in was.iter().zip(is).enumerate() {
        let changed_ok = i == ttl || (af == Af::V4 && (i == 10 || i == 11));
        assert!(w == n || changed_ok, "tunnelled packet changed at byte {i}");
    }
}

fn ethertype(af: Af) -> u16 {
    match af {
        Af::V4 => 0x0800,
        Af::V6 => 0x86dd,
    }
}
