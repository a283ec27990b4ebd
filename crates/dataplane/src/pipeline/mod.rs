//! The forwarding pipeline: one frame in, one [`Verdict`] out, no I/O.
//!
//! A worker owns a [`Pipeline`] and calls [`Pipeline::process`] for every
//! received frame with the [`Snapshot`] it loaded for the batch. The frame is
//! rewritten in place (headroom in front of it takes a tunnel header or an
//! ICMP reply's headers) and the verdict says where it goes.
//!
//! # The packet walk (IPVS's `ip_vs_in` / `ip_vs_out`, without netfilter)
//!
//! 1. [`wire::parse`]: a malformed frame is dropped with the parser's reason.
//! 2. ICMP errors go to [`Pipeline::icmp_error`]: an error quoting a tracked
//!    connection is forwarded to its real server (from the client side) or
//!    to the client (from a NAT real server), NAT-ed where the connection
//!    is. Other ICMP is passed to the kernel.
//! 3. TCP and UDP only (other protocols pass); fragments are dropped (no
//!    reassembly: IPVS relies on the kernel's defragmentation, which an
//!    AF_XDP director does not have).
//! 4. Connection lookup, client -> VIP direction: a hit is forwarded to its
//!    real server with the connection's method.
//! 5. Otherwise a NAT reply lookup (real server -> client): a hit is
//!    rewritten back to VIP:port and sent to the gateway toward clients.
//! 6. Otherwise the packet may start a connection: a TCP SYN (any segment
//!    but a RST with `sloppy_tcp`), or any UDP datagram, to a service (fwmark,
//!    then VIP:port, then VIP:0). Persistent services reuse or create a
//!    template; the scheduler picks a real server otherwise; no real server
//!    gives an ICMP port unreachable, as IPVS's `ip_vs_leave`.
//!
//! Forwarding to a real server decrements the TTL or hop limit (IPVS does
//! since Linux 5.3; at 1 the client gets a time exceeded), checks the egress
//! MTU (fragmentation needed / packet too big when the packet may not be
//! fragmented) and rewrites by method:
//!
//! - DR (`Route`): destination MAC to the real server's, source MAC to the
//!   egress interface's; nothing else.
//! - NAT (`Masq`): destination address and port to the real server's with
//!   incremental checksums; replies get the VIP and port back.
//! - TUN (`Tunnel`): an outer IPv4 or IPv6 header (by the real server's
//!   family) from the egress interface's address, TOS/traffic class and TTL
//!   copied from the inner packet, DF from an IPv4 inner packet.

mod frame;
mod reply;
mod rewrite;
mod stats;
mod synctap;
mod verdict;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use xvs_conntrack::{
    Addr, Af, ConnKey, ConnTable, ConnView, Fwd, InLookup, InsertError, Inserted, NewConn,
    NewTemplate, Proto, ReplyKey, tcp_flags,
};
use xvs_sched::{PickCx, PickState};

pub use frame::Frame;
pub use reply::{IcmpError, may_answer};
pub use rewrite::{Side, decrement_ttl, encapsulate, icmp_overhead, nat, nat_icmp, set_macs};
pub use stats::{Counter, DestCounters, DestTotals, WorkerStats};
pub use synctap::{SyncTap, TAP_CAPACITY};
pub use verdict::{DropReason, Dropped, PassReason, ReplyReason, Verdict};

use crate::service::{Dest, Service, Snapshot, SvcAddr};
use crate::wire::{self, FragKind, InnerInfo, PacketInfo, icmp, ip_proto};

/// Headroom the I/O layer must leave in front of every received frame: the
/// largest header the pipeline prepends (an ICMPv6 reply's IPv6 and ICMPv6
/// headers, 48 bytes; a tunnel header is at most 40).
pub const HEADROOM: usize = 48;

/// Pipeline options (IPVS sysctls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `sloppy_tcp`: any TCP segment but a RST may create a connection (for
    /// a director taking over flows, as after a failover without sync).
    pub sloppy_tcp: bool,
}

/// One worker's pipeline: its scheduling state per service, its counters,
/// the shared connection table.
#[derive(Debug)]
pub struct Pipeline {
    conns: Arc<ConnTable>,
    cfg: Config,
    /// Scheduling state per service index.
    picks: Vec<PickState>,
    seed: u64,
    stats: Arc<WorkerStats>,
    /// IPv4 identification of the packets this worker originates.
    ident: u16,
    /// Connections for the sync master (off unless one runs).
    sync: Arc<SyncTap>,
}

/// What a forwarded frame is, so the forwarding step applies the NAT that
/// fits it after its checks.
#[derive(Clone, Copy)]
enum Carried<'a> {
    /// A TCP or UDP packet of the connection.
    Packet,
    /// An ICMP error quoting a packet of the connection (`ip_vs_nat_icmp`
    /// for NAT; never answered with an ICMP error itself).
    IcmpError(&'a InnerInfo),
}

/// What the lookup of a quoted packet found.
enum IcmpConn {
    /// Toward the real server (an error from the client side).
    In(ConnView),
    /// Toward the client (an error from a NAT real server).
    Out(ConnView),
}

impl Pipeline {
    /// A pipeline over the shared connection table. `worker` seeds the
    /// random schedulers and the IPv4 identification, so workers differ.
    pub fn new(conns: Arc<ConnTable>, cfg: Config, worker: u32) -> Pipeline {
        let stats = Arc::new(WorkerStats::new(conns.dests().len()));
        Pipeline {
            conns,
            cfg,
            picks: Vec::new(),
            seed: 0x9e37_79b9_7f4a_7c15 ^ u64::from(worker),
            stats,
            ident: (worker as u16).wrapping_mul(0x3f1d),
            sync: Arc::new(SyncTap::default()),
        }
    }

    /// This worker's connection-sync queue (the sync thread keeps a clone).
    pub fn sync_tap(&self) -> &Arc<SyncTap> {
        &self.sync
    }

    /// This worker's counters (the control thread keeps a clone to read).
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// The connection table.
    pub fn conns(&self) -> &Arc<ConnTable> {
        &self.conns
    }

    /// Processes one frame received on interface `rx_iface` at `now_ms`
    /// (any monotonic clock in milliseconds; the table's timers use it) and
    /// counts the verdict.
    #[inline]
    pub fn process(
        &mut self,
        now_ms: u64,
        snap: &Snapshot,
        rx_iface: u8,
        frame: &mut Frame<'_>,
    ) -> Verdict {
        let v = self.walk(now_ms, snap, rx_iface, frame);
        self.stats.count(v);
        v
    }

    #[inline(always)]
    fn walk(&mut self, now: u64, snap: &Snapshot, rx_iface: u8, frame: &mut Frame<'_>) -> Verdict {
        // Borrowed, not moved out of the `Result`: a move is a wide copy
        // of fields `parse` has just stored one by one, which stalls
        // store-to-load forwarding.
        let parsed = wire::parse(frame.data());
        let info = match &parsed {
            Ok(info) => info,
            Err(e) => return Verdict::Drop((*e).into()),
        };
        let proto = match info.proto {
            ip_proto::TCP => Proto::Tcp,
            ip_proto::UDP => Proto::Udp,
            ip_proto::ICMP if info.af == Af::V4 => {
                return self.icmp_error(snap, rx_iface, frame, info);
            }
            ip_proto::ICMPV6 if info.af == Af::V6 => {
                return self.icmp_error(snap, rx_iface, frame, info);
            }
            _ => return Verdict::Pass(PassReason::Untracked),
        };
        if info.frag != FragKind::None {
            return drop(Dropped::Fragment);
        }
        let bytes = info.ip_len as u32;
        let (src, dst) = info.addrs_from(frame.data());
        let key = ConnKey {
            proto,
            caddr: src,
            cport: info.sport,
            vaddr: dst,
            vport: info.dport,
        };
        match self.conns.lookup_in(now, &key, info.tcp_flags, bytes) {
            InLookup::Hit(c) => {
                if c.sync {
                    self.sync.offer(key);
                }
                return self.forward_in(snap, frame, info, &c, Carried::Packet);
            }
            InLookup::NoDest => return drop(Dropped::DestDeleted),
            InLookup::Miss => {}
        }
        let reply = ReplyKey {
            proto,
            caddr: info.dst,
            cport: info.dport,
            daddr: info.src,
            dport: info.sport,
        };
        if let Some(c) = self.conns.lookup_out(now, &reply, info.tcp_flags, bytes) {
            if c.sync {
                self.sync.offer(ConnKey {
                    proto,
                    caddr: c.caddr,
                    cport: c.cport,
                    vaddr: c.vaddr,
                    vport: c.vport,
                });
            }
            return self.forward_out(snap, rx_iface, frame, info, &c, Carried::Packet);
        }
        self.new_conn(now, snap, frame, info, key)
    }

    /// Whether a TCP segment with `flags` may create a connection (IPVS
    /// `tcp_conn_schedule`).
    #[inline]
    fn may_start(&self, flags: u8) -> bool {
        let syn = flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN)
            == tcp_flags::SYN;
        syn || (self.cfg.sloppy_tcp && flags & tcp_flags::RST == 0)
    }

    /// Step 6 of the walk: schedule and create a connection.
    fn new_conn(
        &mut self,
        now: u64,
        snap: &Snapshot,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
        key: ConnKey,
    ) -> Verdict {
        let mark = if snap.mark_rules.is_empty() {
            0
        } else {
            snap.classify(key.proto, &key.vaddr, key.vport)
        };
        let Some(svc) = snap.find(key.proto, &key.vaddr, key.vport, mark) else {
            return Verdict::Pass(PassReason::NoService);
        };
        if key.proto == Proto::Tcp && !self.may_start(info.tcp_flags) {
            return self.reset(frame, info);
        }
        let (dest, template) = match svc.persistence {
            None => match self.pick(now, svc, &key) {
                Some(d) => (d, None),
                None => return self.reply(frame, info, &info.dst, IcmpError::PortUnreachable),
            },
            Some(p) => {
                let fwmark = svc.fwmark();
                let port_zero = matches!(svc.addr, SvcAddr::Tuple { vport: 0, .. });
                let tkey = ConnKey {
                    proto: if fwmark.is_some() {
                        Proto::Any
                    } else {
                        key.proto
                    },
                    caddr: key.caddr.masked(p.netmask),
                    cport: 0,
                    vaddr: fwmark.map_or(key.vaddr, |m| Addr::v4(m.to_be_bytes())),
                    vport: if fwmark.is_some() || port_zero {
                        0
                    } else {
                        key.vport
                    },
                };
                if let Some((tid, t)) = self.conns.acquire_template(now, &tkey) {
                    match snap.dest(t.dest).filter(|d| d.mac.is_some()) {
                        Some(d) => (*d, Some(tid)),
                        None => {
                            self.conns.release_template(tid);
                            return drop(Dropped::DestUnresolved);
                        }
                    }
                } else {
                    let Some(d) = self.pick(now, svc, &key) else {
                        return self.reply(frame, info, &info.dst, IcmpError::PortUnreachable);
                    };
                    let t = NewTemplate {
                        key: tkey,
                        daddr: d.addr,
                        dport: if tkey.vport == 0 { 0 } else { d.port },
                        dest: d.id,
                        fwd: d.fwd,
                        timeout_ms: p.timeout_ms,
                    };
                    match self.conns.create_template(now, &t) {
                        Ok((tid, tv)) => {
                            if tv.sync {
                                self.sync.offer(tkey);
                            }
                            (d, Some(tid))
                        }
                        Err(InsertError::Full) => return drop(Dropped::TableFull),
                    }
                }
            }
        };
        // DR and TUN cannot change the port; NAT keeps the client's
        // destination port when the real server's is 0.
        let dport = if dest.fwd != Fwd::Masq || dest.port == 0 {
            key.vport
        } else {
            dest.port
        };
        let n = NewConn {
            key,
            daddr: dest.addr,
            dport,
            dest: dest.id,
            fwd: dest.fwd,
            template,
        };
        match self
            .conns
            .insert(now, &n, info.tcp_flags, info.ip_len as u32)
        {
            Ok(Inserted::New(c)) => {
                if let Some(s) = self.stats.dest(c.dest) {
                    s.conns.add(1);
                }
                self.sync.offer(key);
                self.forward_in(snap, frame, info, &c, Carried::Packet)
            }
            Ok(Inserted::Existing(c)) => {
                if c.sync {
                    self.sync.offer(key);
                }
                self.forward_in(snap, frame, info, &c, Carried::Packet)
            }
            Err(InsertError::Full) => drop(Dropped::TableFull),
        }
    }

    /// Asks the service's scheduler for a real server.
    #[inline]
    fn pick(&mut self, now: u64, svc: &Service, key: &ConnKey) -> Option<Dest> {
        let i = svc.index as usize;
        if self.picks.len() <= i {
            let seed = self.seed;
            let from = self.picks.len();
            self.picks
                .extend((from..=i).map(|s| PickState::with_seed(seed ^ (s as u64) << 32)));
        }
        let mut cx = PickCx {
            dests: self.conns.dests(),
            now_ms: now,
            state: &mut self.picks[i],
        };
        let picked = svc.sched.pick(&mut cx, key)?;
        svc.scheduled(picked).copied()
    }

    /// The frame as an ICMP error to its sender, from `from`.
    #[cold]
    fn reply(
        &mut self,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
        from: &Addr,
        err: IcmpError,
    ) -> Verdict {
        if !may_answer(&info.src) || from.af() != info.af {
            return drop(Dropped::ReplySuppressed);
        }
        self.ident = self.ident.wrapping_add(1);
        if !reply::build(frame, info, from, err, self.ident) {
            return drop(Dropped::NoHeadroom);
        }
        Verdict::Reply(match err {
            IcmpError::PortUnreachable => ReplyReason::NoDest,
            IcmpError::TooBig(_) => ReplyReason::TooBig,
            IcmpError::TtlExceeded => ReplyReason::TtlExceeded,
        })
    }

    /// A TCP segment to a service that no connection takes and that may
    /// not start one: what IPVS's local stack does, a reset (never for a
    /// reset, nor to a source no answer may go to; those are passed, which
    /// for an AF_XDP worker means dropped).
    #[cold]
    fn reset(&mut self, frame: &mut Frame<'_>, info: &PacketInfo) -> Verdict {
        if info.tcp_flags & tcp_flags::RST != 0 || !may_answer(&info.src) {
            return Verdict::Pass(PassReason::NotSyn);
        }
        self.ident = self.ident.wrapping_add(1);
        if !reply::build_rst(frame, info, self.ident) {
            return Verdict::Pass(PassReason::NotSyn);
        }
        Verdict::Reply(ReplyReason::Reset)
    }

    /// The answer to a packet too big for an egress MTU of `mtu` once `extra`
    /// bytes are added: fragmentation needed (IPv4 with DF) or packet too
    /// big (IPv6), from `from`; a drop when the packet may be fragmented
    /// (the director does not fragment) or is an ICMP error itself.
    #[cold]
    fn too_big(
        &mut self,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
        from: &Addr,
        mtu: usize,
        extra: usize,
        is_error: bool,
    ) -> Verdict {
        let room = mtu.saturating_sub(extra);
        let floor = match info.af {
            Af::V4 => 68,
            Af::V6 => 1280,
        };
        let may_signal = match info.af {
            Af::V4 => info.df,
            Af::V6 => true,
        };
        if is_error || !may_signal || room < floor {
            return drop(Dropped::TooBig);
        }
        self.reply(
            frame,
            info,
            from,
            IcmpError::TooBig(room.min(usize::from(u16::MAX)) as u16),
        )
    }

    /// Forwards a client -> VIP packet (or an ICMP error from the client
    /// side, `is_error`) to the connection's real server.
    #[inline]
    fn forward_in(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
        c: &ConnView,
        carried: Carried<'_>,
    ) -> Verdict {
        let is_error = matches!(carried, Carried::IcmpError(_));
        let Some(d) = snap.dest(c.dest) else {
            return drop(Dropped::DestUnknown);
        };
        let Some(mac) = d.mac else {
            return drop(Dropped::DestUnresolved);
        };
        let Some(ifc) = snap.ifaces.get(usize::from(d.iface)) else {
            return drop(Dropped::DestUnknown);
        };
        if info.ttl <= 1 {
            if is_error {
                return drop(Dropped::TtlExpired);
            }
            return self.reply(frame, info, &info.dst, IcmpError::TtlExceeded);
        }
        let mtu = usize::from(ifc.mtu);
        let verdict = match c.fwd {
            Fwd::Route | Fwd::Masq => {
                if d.addr.af() != info.af {
                    return drop(Dropped::FamilyMismatch);
                }
                if info.ip_len > mtu {
                    return self.too_big(frame, info, &info.dst, mtu, 0, is_error);
                }
                let data = frame.data_mut();
                decrement_ttl(data, info.l3_off, info.af);
                if c.fwd == Fwd::Masq {
                    match carried {
                        Carried::Packet => nat(data, info, Side::Dst, &c.daddr, c.dport),
                        Carried::IcmpError(inner) => {
                            nat_icmp(data, info, inner, Side::Dst, &c.daddr, c.dport)
                        }
                    }
                }
                set_macs(data, mac, ifc.mac);
                Verdict::Tx { iface: d.iface }
            }
            Fwd::Tunnel => {
                let src = match d.addr.af() {
                    Af::V4 => ifc.addr4.map(Addr::v4),
                    Af::V6 => ifc.addr6.map(Addr::v6),
                };
                let Some(src) = src else {
                    return drop(Dropped::FamilyMismatch);
                };
                let mut inner = *info;
                inner.ttl -= 1;
                self.ident = self.ident.wrapping_add(1);
                let Some(outer) = wire::tunnel_outer(&src, &d.addr, self.ident, &inner) else {
                    return drop(Dropped::TooBig);
                };
                if info.ip_len + outer.len() > mtu {
                    return self.too_big(frame, info, &info.dst, mtu, outer.len(), is_error);
                }
                decrement_ttl(frame.data_mut(), info.l3_off, info.af);
                if !encapsulate(frame, info, &outer) {
                    return drop(Dropped::NoHeadroom);
                }
                set_macs(frame.data_mut(), mac, ifc.mac);
                Verdict::Tx { iface: d.iface }
            }
        };
        if let Some(s) = self.stats.dest(c.dest) {
            s.in_pkts.add(1);
            s.in_bytes.add(info.ip_len as u64);
        }
        verdict
    }

    /// Forwards a NAT reply (or an ICMP error from a NAT real server,
    /// `is_error`) to the client through the gateway, with the VIP and
    /// port as its source.
    #[inline]
    fn forward_out(
        &mut self,
        snap: &Snapshot,
        rx_iface: u8,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
        c: &ConnView,
        carried: Carried<'_>,
    ) -> Verdict {
        let is_error = matches!(carried, Carried::IcmpError(_));
        let Some(gw) = snap.gateway(info.af) else {
            return drop(Dropped::GatewayUnresolved);
        };
        let Some(ifc) = snap.ifaces.get(usize::from(gw.iface)) else {
            return drop(Dropped::DestUnknown);
        };
        if info.ttl <= 1 || info.ip_len > usize::from(ifc.mtu) {
            // Errors to the real server come from the director's address
            // on the interface the reply came in on, as the kernel's
            // forwarding path sends them.
            let rx = snap.ifaces.get(usize::from(rx_iface));
            let from = match info.af {
                Af::V4 => rx.and_then(|i| i.addr4).map(Addr::v4),
                Af::V6 => rx.and_then(|i| i.addr6).map(Addr::v6),
            };
            let Some(from) = from else {
                return drop(Dropped::ReplySuppressed);
            };
            if info.ttl <= 1 {
                if is_error {
                    return drop(Dropped::TtlExpired);
                }
                return self.reply(frame, info, &from, IcmpError::TtlExceeded);
            }
            return self.too_big(frame, info, &from, usize::from(ifc.mtu), 0, is_error);
        }
        let data = frame.data_mut();
        decrement_ttl(data, info.l3_off, info.af);
        match carried {
            Carried::Packet => nat(data, info, Side::Src, &c.vaddr, c.vport),
            Carried::IcmpError(inner) => nat_icmp(data, info, inner, Side::Src, &c.vaddr, c.vport),
        }
        set_macs(data, gw.mac, ifc.mac);
        if let Some(s) = self.stats.dest(c.dest) {
            s.out_pkts.add(1);
            s.out_bytes.add(info.ip_len as u64);
        }
        Verdict::Tx { iface: gw.iface }
    }

    /// An ICMP or ICMPv6 message (IPVS `ip_vs_in_icmp` / `ip_vs_out_icmp`):
    /// an error about a tracked connection is forwarded; anything else goes
    /// to the kernel.
    #[cold]
    fn icmp_error(
        &mut self,
        snap: &Snapshot,
        rx_iface: u8,
        frame: &mut Frame<'_>,
        info: &PacketInfo,
    ) -> Verdict {
        let forwarded = match info.af {
            Af::V4 => matches!(
                info.icmp_type,
                icmp::v4::DEST_UNREACH | icmp::v4::SOURCE_QUENCH | icmp::v4::TIME_EXCEEDED
            ),
            Af::V6 => icmp::v6::is_error(info.icmp_type),
        };
        let Some(inner) = info.inner.filter(|_| forwarded) else {
            return Verdict::Pass(PassReason::IcmpNotError);
        };
        if info.frag != FragKind::None {
            return drop(Dropped::Fragment);
        }
        let Some(found) = self.icmp_conn(&inner) else {
            return Verdict::Pass(PassReason::IcmpNoConn);
        };
        match found {
            IcmpConn::In(c) => self.forward_in(snap, frame, info, &c, Carried::IcmpError(&inner)),
            IcmpConn::Out(c) => {
                self.forward_out(snap, rx_iface, frame, info, &c, Carried::IcmpError(&inner))
            }
        }
    }

    /// The connection an ICMP error's quoted packet belongs to: a packet
    /// VIP -> client (the error came from the client side), or a NAT-ed
    /// packet client -> real server (the error came from the real server).
    fn icmp_conn(&self, inner: &InnerInfo) -> Option<IcmpConn> {
        let proto = match inner.proto {
            ip_proto::TCP => Proto::Tcp,
            ip_proto::UDP => Proto::Udp,
            _ => return None,
        };
        // The ports must be there (RFC 792 quotes 8 bytes of the header).
        if inner.frag == FragKind::NonFirst || inner.l4_len < 8 {
            return None;
        }
        let k = ConnKey {
            proto,
            caddr: inner.dst,
            cport: inner.dport,
            vaddr: inner.src,
            vport: inner.sport,
        };
        if let Some(c) = self.conns.peek_in(&k).filter(|c| !c.is_template()) {
            return Some(IcmpConn::In(ConnView::of(&c, 0)));
        }
        let r = ReplyKey {
            proto,
            caddr: inner.src,
            cport: inner.sport,
            daddr: inner.dst,
            dport: inner.dport,
        };
        self.conns
            .peek_out(&r)
            .map(|c| IcmpConn::Out(ConnView::of(&c, 0)))
    }
}

#[inline]
fn drop(d: Dropped) -> Verdict {
    Verdict::Drop(DropReason::Other(d))
}
