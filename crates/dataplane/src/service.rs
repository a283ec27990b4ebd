//! The service table snapshot: what the control plane publishes and the
//! workers read without locks.
//!
//! A [`Snapshot`] is immutable. The control plane builds a new one for every
//! change (or every batch of changes, so `-R` applies all or nothing) and
//! publishes it through a [`SharedSnapshot`]; a worker loads the current one
//! once per receive batch and keeps it for that batch. Services keep their
//! [`Service::index`] across snapshots, which is how a worker keeps its
//! per-service scheduling state.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hashbrown::HashMap;
use xvs_conntrack::{Addr, Af, DestId, Fwd, Proto};
use xvs_sched::{DestInfo, Scheduler};

/// How a service is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SvcAddr {
    /// `-t/-u/--sctp-service VIP:PORT` (port 0: every port of the VIP).
    Tuple {
        /// Protocol.
        proto: Proto,
        /// Virtual address.
        vaddr: Addr,
        /// Virtual port, 0 for a port-zero (all ports) service.
        vport: u16,
    },
    /// `-f MARK` (with `-6` for IPv6).
    Fwmark {
        /// Firewall mark.
        mark: u32,
        /// Address family.
        af: Af,
    },
}

/// Persistence (`-p timeout`, `-M netmask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Template timeout in milliseconds.
    pub timeout_ms: u64,
    /// Prefix length applied to the client address (IPv4 0..=32, IPv6 0..=128).
    pub netmask: u8,
}

/// A real server as the data plane needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Slot in the connection table's destination arena.
    pub id: DestId,
    /// Real server address.
    pub addr: Addr,
    /// Real server port (0: keep the client's destination port).
    pub port: u16,
    /// Forwarding method.
    pub fwd: Fwd,
    /// Weight (0 = quiescent).
    pub weight: i32,
    /// Resolved MAC address of the real server (DR, NAT) or of the next hop
    /// toward it (TUN); `None` until neighbour resolution finds it.
    pub mac: Option<[u8; 6]>,
    /// Director interface (index into [`Snapshot::ifaces`]) toward it.
    pub iface: u8,
    /// Index of the service it belongs to ([`Service::new`] sets it), which
    /// per-destination counters are summed into.
    pub svc: u32,
}

/// A virtual service.
#[derive(Debug)]
pub struct Service {
    /// Stable index (kept across snapshots) for per-worker state.
    pub index: u32,
    /// Address.
    pub addr: SvcAddr,
    /// Persistence, if `-p` was given.
    pub persistence: Option<Persistence>,
    /// Real servers, in configuration order.
    pub dests: Vec<Dest>,
    /// The scheduler, updated with the schedulable destinations: those
    /// whose MAC address is known. A destination still being resolved is
    /// not given new connections.
    pub sched: Box<dyn Scheduler>,
    /// For each destination the scheduler knows (its index), the index in
    /// `dests`.
    sched_map: Vec<u32>,
}

impl Service {
    /// A service with its scheduler updated for the destinations of `dests`
    /// whose MAC address is resolved; every destination's
    /// [`svc`](Dest::svc) is set to `index`.
    pub fn new(
        index: u32,
        addr: SvcAddr,
        persistence: Option<Persistence>,
        mut dests: Vec<Dest>,
        mut sched: Box<dyn Scheduler>,
    ) -> Service {
        let mut infos = Vec::with_capacity(dests.len());
        let mut sched_map = Vec::with_capacity(dests.len());
        for (i, d) in dests.iter_mut().enumerate() {
            d.svc = index;
            if d.mac.is_some() {
                infos.push(DestInfo {
                    id: d.id,
                    addr: d.addr,
                    port: d.port,
                    weight: d.weight,
                });
                sched_map.push(i as u32);
            }
        }
        sched.update(&infos);
        Service {
            index,
            addr,
            persistence,
            dests,
            sched,
            sched_map,
        }
    }

    /// The destination the scheduler chose: its index in the list the
    /// scheduler was given, mapped back to [`dests`](Self::dests).
    #[inline]
    pub fn scheduled(&self, picked: usize) -> Option<&Dest> {
        let i = *self.sched_map.get(picked)?;
        self.dests.get(i as usize)
    }

    /// Destinations left out of scheduling because their MAC address is not
    /// resolved yet.
    pub fn unresolved(&self) -> usize {
        self.dests.len() - self.sched_map.len()
    }

    /// The firewall mark of a fwmark service.
    pub fn fwmark(&self) -> Option<u32> {
        match self.addr {
            SvcAddr::Fwmark { mark, .. } => Some(mark),
            SvcAddr::Tuple { .. } => None,
        }
    }
}

/// A director interface as the pipeline sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iface {
    /// Its MAC address (source MAC of frames sent on it).
    pub mac: [u8; 6],
    /// Its MTU (IP packet size).
    pub mtu: u16,
    /// Its IPv4 address (source of tunnel headers and ICMP errors).
    pub addr4: Option<[u8; 4]>,
    /// Its IPv6 address (source of tunnel headers and ICMPv6 errors).
    pub addr6: Option<[u8; 16]>,
}

/// Where NAT replies go: the director's next hop toward clients (its
/// default route), resolved by the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// Interface (index into [`Snapshot::ifaces`]).
    pub iface: u8,
    /// MAC address of the next hop.
    pub mac: [u8; 6],
}

/// A packet classification rule that gives a firewall mark, the director's
/// own replacement for the `iptables -t mangle ... -j MARK` rules that feed
/// IPVS fwmark services: a packet matches when its protocol, destination
/// address prefix and destination port range match. Rules are tried in
/// order; the first match gives the mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkRule {
    /// Transport protocol, or [`Proto::Any`] for every protocol.
    pub proto: Proto,
    /// Destination address (with `prefix_len`).
    pub daddr: Addr,
    /// Prefix length of `daddr` (IPv4 0..=32, IPv6 0..=128).
    pub prefix_len: u8,
    /// Lowest destination port matched.
    pub port_min: u16,
    /// Highest destination port matched.
    pub port_max: u16,
    /// The mark given (non-zero).
    pub mark: u32,
}

impl MarkRule {
    /// Whether a packet to `daddr:dport` over `proto` matches.
    #[inline]
    pub fn matches(&self, proto: Proto, daddr: &Addr, dport: u16) -> bool {
        (self.proto == Proto::Any || self.proto == proto)
            && daddr.af() == self.daddr.af()
            && daddr.masked(self.prefix_len) == self.daddr.masked(self.prefix_len)
            && (self.port_min..=self.port_max).contains(&dport)
    }
}

/// An immutable view of every service, real server and interface.
#[derive(Debug, Default)]
pub struct Snapshot {
    tuples: HashMap<(Proto, Addr, u16), Arc<Service>>,
    marks: HashMap<(u32, Af), Arc<Service>>,
    /// Forwarding data of every destination by id, including deleted ones
    /// that connections still use (IPVS's destination trash).
    dests: Vec<Option<Dest>>,
    /// Director interfaces.
    pub ifaces: Vec<Iface>,
    /// Next hop toward clients for NAT replies, per family (IPv4, IPv6):
    /// the director's default routes.
    pub gateways: [Option<Gateway>; 2],
    /// Fwmark classification rules, in order.
    pub mark_rules: Vec<MarkRule>,
    /// Increases with every publication.
    pub generation: u64,
}

impl Snapshot {
    /// A snapshot of `services` over `ifaces`; `retired` are deleted
    /// destinations still referenced by connections.
    pub fn new(
        services: Vec<Arc<Service>>,
        retired: &[Dest],
        ifaces: Vec<Iface>,
        generation: u64,
    ) -> Snapshot {
        let mut s = Snapshot {
            ifaces,
            generation,
            ..Snapshot::default()
        };
        for d in retired {
            s.put_dest(*d);
        }
        for svc in services {
            for d in &svc.dests {
                s.put_dest(*d);
            }
            match svc.addr {
                SvcAddr::Tuple {
                    proto,
                    vaddr,
                    vport,
                } => {
                    s.tuples.insert((proto, vaddr, vport), svc);
                }
                SvcAddr::Fwmark { mark, af } => {
                    s.marks.insert((mark, af), svc);
                }
            }
        }
        s
    }

    /// This snapshot with NAT replies of family `af` sent through
    /// `gateway`.
    pub fn with_gateway(mut self, af: Af, gateway: Option<Gateway>) -> Snapshot {
        self.gateways[af_index(af)] = gateway;
        self
    }

    /// This snapshot with both families' gateways.
    pub fn with_gateways(mut self, gateways: [Option<Gateway>; 2]) -> Snapshot {
        self.gateways = gateways;
        self
    }

    /// The next hop toward clients of family `af`.
    #[inline]
    pub fn gateway(&self, af: Af) -> Option<Gateway> {
        self.gateways[af_index(af)]
    }

    /// This snapshot with the fwmark classification `rules`.
    pub fn with_mark_rules(mut self, rules: Vec<MarkRule>) -> Snapshot {
        self.mark_rules = rules;
        self
    }

    /// The firewall mark of a packet: that of the first matching rule, 0
    /// when none matches.
    #[inline]
    pub fn classify(&self, proto: Proto, daddr: &Addr, dport: u16) -> u32 {
        self.mark_rules
            .iter()
            .find(|r| r.matches(proto, daddr, dport))
            .map_or(0, |r| r.mark)
    }

    fn put_dest(&mut self, d: Dest) {
        let i = d.id as usize;
        if self.dests.len() <= i {
            self.dests.resize(i + 1, None);
        }
        self.dests[i] = Some(d);
    }

    /// IPVS's service lookup order: the fwmark service (when the packet
    /// carries a mark), then the exact VIP:port, then the VIP's port-zero
    /// service.
    #[inline]
    pub fn find(&self, proto: Proto, vaddr: &Addr, vport: u16, mark: u32) -> Option<&Arc<Service>> {
        if mark != 0 {
            if let Some(s) = self.marks.get(&(mark, vaddr.af())) {
                return Some(s);
            }
        }
        self.tuples
            .get(&(proto, *vaddr, vport))
            .or_else(|| self.tuples.get(&(proto, *vaddr, 0)))
    }

    /// Forwarding data of a destination by id.
    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id as usize)?.as_ref()
    }

    /// Every service (for listings and the XDP VIP map).
    pub fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.tuples.values().chain(self.marks.values())
    }

    /// Highest service index + 1 (size of per-worker per-service arrays).
    pub fn index_bound(&self) -> usize {
        self.services()
            .map(|s| s.index as usize + 1)
            .max()
            .unwrap_or(0)
    }
}

/// The published snapshot: one atomic pointer swap per publication, a
/// lock-free load per receive batch.
pub type SharedSnapshot = ArcSwap<Snapshot>;

/// Index of a family in per-family arrays: IPv4 0, IPv6 1.
#[inline]
pub fn af_index(af: Af) -> usize {
    match af {
        Af::V4 => 0,
        Af::V6 => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(id: DestId, last: u8, fwd: Fwd) -> Dest {
        Dest {
            id,
            addr: Addr::v4([10, 0, 0, last]),
            port: 80,
            fwd,
            weight: 1,
            mac: Some([2, 0, 0, 0, 0, last]),
            iface: 0,
            svc: 0,
        }
    }

    fn svc(index: u32, addr: SvcAddr, dests: Vec<Dest>) -> Arc<Service> {
        let sched = xvs_sched::by_name("rr", Default::default()).unwrap();
        Arc::new(Service::new(index, addr, None, dests, sched))
    }

    #[test]
    fn lookup_order_is_fwmark_then_tuple_then_port_zero() {
        let vip = Addr::v4([192, 0, 2, 1]);
        let snap = Snapshot::new(
            vec![
                svc(
                    0,
                    SvcAddr::Tuple {
                        proto: Proto::Tcp,
                        vaddr: vip,
                        vport: 80,
                    },
                    vec![dest(1, 1, Fwd::Route)],
                ),
                svc(
                    1,
                    SvcAddr::Tuple {
                        proto: Proto::Tcp,
                        vaddr: vip,
                        vport: 0,
                    },
                    vec![dest(2, 2, Fwd::Route)],
                ),
                svc(
                    2,
                    SvcAddr::Fwmark {
                        mark: 7,
                        af: Af::V4,
                    },
                    vec![dest(3, 3, Fwd::Tunnel)],
                ),
            ],
            &[dest(9, 9, Fwd::Masq)],
            vec![],
            1,
        );
        assert_eq!(snap.find(Proto::Tcp, &vip, 80, 0).unwrap().index, 0);
        assert_eq!(snap.find(Proto::Tcp, &vip, 443, 0).unwrap().index, 1);
        assert_eq!(snap.find(Proto::Tcp, &vip, 80, 7).unwrap().index, 2);
        assert_eq!(
            snap.find(Proto::Tcp, &vip, 80, 8).unwrap().index,
            0,
            "unknown mark"
        );
        assert!(snap.find(Proto::Udp, &vip, 80, 0).is_none());
        assert!(
            snap.find(Proto::Tcp, &Addr::v4([192, 0, 2, 2]), 80, 0)
                .is_none()
        );
        assert_eq!(snap.dest(3).unwrap().fwd, Fwd::Tunnel);
        assert_eq!(
            snap.dest(9).unwrap().fwd,
            Fwd::Masq,
            "retired destination kept"
        );
        assert!(snap.dest(4).is_none());
        assert_eq!(snap.index_bound(), 3);
    }

    #[test]
    fn published_snapshot_swaps_atomically() {
        let shared = SharedSnapshot::from_pointee(Snapshot::default());
        let before = shared.load_full();
        shared.store(Arc::new(Snapshot {
            generation: 2,
            ..Snapshot::default()
        }));
        assert_eq!(before.generation, 0, "a reader keeps what it loaded");
        assert_eq!(shared.load().generation, 2);
    }
}
