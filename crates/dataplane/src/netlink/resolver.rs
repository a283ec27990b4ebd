//! Next hops of real servers: egress interface, next-hop address, its MAC.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::{Error, Link, Mac, Neigh, Netlink, NudState, Result, Route, RouteKind};

/// Where frames for a target leave, and toward which address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface index.
    pub ifindex: u32,
    /// Its MAC: the source MAC of frames sent there.
    pub if_mac: Mac,
    /// Its MTU.
    pub mtu: u32,
    /// The address whose MAC frames carry: the gateway, or the target itself
    /// when it is on-link.
    pub addr: IpAddr,
    /// `addr` is a gateway (the target is not on-link).
    pub via_gateway: bool,
    /// The kernel's preferred source address toward the target.
    pub src: Option<IpAddr>,
}

/// Why a target cannot be sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// The kernel has no route to it (`errno`: `ENETUNREACH`,
    /// `EHOSTUNREACH`, `EINVAL` for a blackhole, ...).
    NoRoute {
        /// The kernel's errno.
        errno: i32,
    },
    /// The route is not a unicast route (the address is the director's own,
    /// a broadcast, a blackhole, ...).
    NotUnicast(RouteKind),
    /// The egress interface is down, without carrier, or gone.
    LinkDown {
        /// Its index.
        ifindex: u32,
    },
    /// The egress interface has no Ethernet address (loopback, tun, ...).
    NotEthernet {
        /// Its index.
        ifindex: u32,
    },
    /// The kernel refused to start resolution.
    ResolveRefused {
        /// The kernel's errno.
        errno: i32,
    },
}

/// What is known about one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Frames may be sent: `mac` is the next hop's MAC.
    Ready {
        /// Egress and next hop.
        hop: NextHop,
        /// The next hop's MAC (destination MAC of frames).
        mac: Mac,
    },
    /// Route known, MAC not (yet): the kernel was asked to resolve it. Do
    /// not send.
    Pending {
        /// Egress and next hop.
        hop: NextHop,
        /// State of the kernel's entry (`NONE` if there is none yet).
        state: NudState,
    },
    /// Cannot be sent to.
    Unusable(Unusable),
}

impl Resolution {
    /// The next hop's MAC, when frames may be sent.
    pub fn mac(&self) -> Option<Mac> {
        match self {
            Resolution::Ready { mac, .. } => Some(*mac),
            _ => None,
        }
    }

    /// Egress and next hop, when a route is known.
    pub fn hop(&self) -> Option<&NextHop> {
        match self {
            Resolution::Ready { hop, .. } | Resolution::Pending { hop, .. } => Some(hop),
            Resolution::Unusable(_) => None,
        }
    }

    /// Frames may be sent.
    pub fn is_ready(&self) -> bool {
        matches!(self, Resolution::Ready { .. })
    }

    /// Equal as far as a snapshot is concerned: the neighbour state of a
    /// pending entry (INCOMPLETE, then FAILED, ...) is not.
    fn same_for_publish(&self, other: &Resolution) -> bool {
        match (self, other) {
            (Resolution::Pending { hop: a, .. }, Resolution::Pending { hop: b, .. }) => a == b,
            _ => self == other,
        }
    }
}

/// A target whose [`Resolution`] changed in [`NextHopResolver::refresh`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The target.
    pub target: IpAddr,
    /// Before (`None`: new target).
    pub before: Option<Resolution>,
    /// After (`None`: no longer a target).
    pub after: Option<Resolution>,
}

/// The next-hop decision for `target`, from the kernel's route to it, the
/// egress link and the next hop's neighbour entry (if any). The `bool` says
/// whether the kernel should be asked to (re)resolve the next hop: it has no
/// entry, or a FAILED or STALE one. A STALE entry is still [`Resolution::Ready`]
/// but is re-confirmed, since the director's own traffic bypasses the
/// kernel and never confirms it.
pub fn classify(
    target: IpAddr,
    route: &Route,
    link: Option<&Link>,
    neigh: Option<&Neigh>,
) -> (Resolution, bool) {
    if route.kind != RouteKind::Unicast {
        return (
            Resolution::Unusable(Unusable::NotUnicast(route.kind)),
            false,
        );
    }
    let ifindex = route.oif;
    let Some(link) = link.filter(|l| l.up && l.lower_up) else {
        return (Resolution::Unusable(Unusable::LinkDown { ifindex }), false);
    };
    let Some(if_mac) = link.mac else {
        return (
            Resolution::Unusable(Unusable::NotEthernet { ifindex }),
            false,
        );
    };
    let hop = NextHop {
        ifindex,
        if_mac,
        mtu: link.mtu,
        addr: route.next_hop(target),
        via_gateway: route.gateway.is_some(),
        src: route.prefsrc,
    };
    let state = neigh.map_or(NudState::NONE, |n| n.state);
    let kick = state.wants_kick();
    match neigh.filter(|n| n.usable()).and_then(|n| n.mac) {
        Some(mac) => (Resolution::Ready { hop, mac }, kick),
        None => (Resolution::Pending { hop, state }, kick),
    }
}

/// Keeps the [`Resolution`] of a set of targets (real servers, gateways)
/// up to date. Call [`NextHopResolver::refresh`] periodically (every
/// second or so) from the control thread and publish a new snapshot when it
/// returns changes.
///
/// For NAT replies, list the default gateway too (the `gateway` of
/// [`Netlink::default_route`]): its resolution gives the egress interface
/// and the MAC toward clients. When the default route has no gateway
/// (clients on-link), each client is its own next hop: look it up with
/// [`Netlink::neighbour`] instead.
#[derive(Debug, Default)]
pub struct NextHopResolver {
    entries: BTreeMap<IpAddr, Resolution>,
}

impl NextHopResolver {
    /// An empty resolver.
    pub fn new() -> NextHopResolver {
        NextHopResolver::default()
    }

    /// Asks the kernel for the route to every target, the links and the
    /// neighbour tables; kicks resolution for next hops without a usable
    /// (or with a stale) MAC; returns the targets whose resolution changed,
    /// including targets no longer listed (`after: None`). A target the
    /// kernel has no route to is [`Unusable::NoRoute`], not an error; an
    /// error means the netlink exchange itself failed, and the previous
    /// state is kept.
    ///
    /// Costs 3 dumps plus one request per target and one per kick.
    pub fn refresh(&mut self, nl: &mut Netlink, targets: &[IpAddr]) -> Result<Vec<Change>> {
        let links: HashMap<u32, Link> = nl
            .links_without_addresses()?
            .into_iter()
            .map(|l| (l.ifindex, l))
            .collect();
        let neighs: HashMap<(u32, IpAddr), Neigh> = nl
            .neighbours()?
            .into_iter()
            .map(|n| ((n.ifindex, n.addr), n))
            .collect();
        let mut next = BTreeMap::new();
        for &target in targets {
            if next.contains_key(&target) {
                continue;
            }
            let resolution = match nl.route_get(target) {
                Ok(route) => {
                    let hop_key = (route.oif, route.next_hop(target));
                    let (mut res, kick) =
                        classify(target, &route, links.get(&route.oif), neighs.get(&hop_key));
                    if kick && let Err(e) = nl.resolve(hop_key.0, hop_key.1) {
                        let errno = e.errno().ok_or(e)?;
                        if !res.is_ready() {
                            res = Resolution::Unusable(Unusable::ResolveRefused { errno });
                        }
                    }
                    res
                }
                Err(Error::Kernel { errno, .. }) => {
                    Resolution::Unusable(Unusable::NoRoute { errno })
                }
                Err(e) => return Err(e),
            };
            next.insert(target, resolution);
        }
        let changes = diff(&self.entries, &next);
        self.entries = next;
        Ok(changes)
    }

    /// The current resolution of `target`.
    pub fn get(&self, target: IpAddr) -> Option<&Resolution> {
        self.entries.get(&target)
    }

    /// Every target and its resolution, ordered by address.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &Resolution)> {
        self.entries.iter().map(|(a, r)| (*a, r))
    }
}

/// What differs between two states, ordered by address.
fn diff(old: &BTreeMap<IpAddr, Resolution>, new: &BTreeMap<IpAddr, Resolution>) -> Vec<Change> {
    let mut changes: Vec<Change> = new
        .iter()
        .filter(|(t, n)| old.get(t).is_none_or(|o| !o.same_for_publish(n)))
        .map(|(t, n)| Change {
            target: *t,
            before: old.get(t).cloned(),
            after: Some(n.clone()),
        })
        .collect();
    changes.extend(
        old.iter()
            .filter(|(t, _)| !new.contains_key(t))
            .map(|(t, o)| Change {
                target: *t,
                before: Some(o.clone()),
                after: None,
            }),
    );
    changes.sort_by_key(|c| c.target);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const IF_MAC: Mac = [2, 0, 0, 0, 0, 1];
    const PEER_MAC: Mac = [2, 0, 0, 0, 0, 2];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn link() -> Link {
        Link {
            ifindex: 4,
            name: "eth0".into(),
            mac: Some(IF_MAC),
            mtu: 1500,
            up: true,
            lower_up: true,
            ipv4: vec![],
            ipv6: vec![],
        }
    }

    fn route(gateway: Option<&str>) -> Route {
        Route {
            oif: 4,
            gateway: gateway.map(ip),
            prefsrc: Some(ip("10.0.0.1")),
            kind: RouteKind::Unicast,
            table: 254,
            priority: 0,
            prefix_len: 32,
        }
    }

    fn neigh(addr: &str, state: NudState, mac: Option<Mac>) -> Neigh {
        Neigh {
            ifindex: 4,
            addr: ip(addr),
            mac,
            state,
            router: false,
        }
    }

    #[test]
    fn on_link_target_with_reachable_entry_is_ready() {
        let n = neigh("10.0.0.2", NudState::REACHABLE, Some(PEER_MAC));
        let (r, kick) = classify(ip("10.0.0.2"), &route(None), Some(&link()), Some(&n));
        assert!(!kick);
        let hop = r.hop().unwrap();
        assert_eq!(hop.addr, ip("10.0.0.2"));
        assert!(!hop.via_gateway);
        assert_eq!((hop.ifindex, hop.if_mac, hop.mtu), (4, IF_MAC, 1500));
        assert_eq!(hop.src, Some(ip("10.0.0.1")));
        assert_eq!(r.mac(), Some(PEER_MAC));
    }

    #[test]
    fn target_behind_a_gateway_uses_the_gateway() {
        let (r, kick) = classify(
            ip("198.51.100.7"),
            &route(Some("10.0.0.254")),
            Some(&link()),
            None,
        );
        assert!(kick, "no entry: resolution must be triggered");
        assert_eq!(
            r,
            Resolution::Pending {
                hop: NextHop {
                    ifindex: 4,
                    if_mac: IF_MAC,
                    mtu: 1500,
                    addr: ip("10.0.0.254"),
                    via_gateway: true,
                    src: Some(ip("10.0.0.1")),
                },
                state: NudState::NONE,
            }
        );
    }

    #[test]
    fn kick_decisions_by_state() {
        let cases = [
            (NudState::INCOMPLETE, None, false, false),
            (NudState::FAILED, None, false, true),
            (NudState::STALE, Some(PEER_MAC), true, true),
            (NudState::DELAY, Some(PEER_MAC), true, false),
            (NudState::PROBE, Some(PEER_MAC), true, false),
            (NudState::PERMANENT, Some(PEER_MAC), true, false),
            (NudState::NOARP, Some(PEER_MAC), true, false),
            (NudState::REACHABLE, None, false, false),
        ];
        for (state, mac, ready, want_kick) in cases {
            let n = neigh("10.0.0.2", state, mac);
            let (r, kick) = classify(ip("10.0.0.2"), &route(None), Some(&link()), Some(&n));
            assert_eq!(r.is_ready(), ready, "{state}");
            assert_eq!(kick, want_kick, "{state}");
        }
    }

    #[test]
    fn unusable_routes_and_links() {
        let mut r = route(None);
        r.kind = RouteKind::Local;
        let (res, kick) = classify(ip("10.0.0.1"), &r, Some(&link()), None);
        assert_eq!(
            res,
            Resolution::Unusable(Unusable::NotUnicast(RouteKind::Local))
        );
        assert!(!kick);

        let mut down = link();
        down.up = false;
        let (res, _) = classify(ip("10.0.0.2"), &route(None), Some(&down), None);
        assert_eq!(res, Resolution::Unusable(Unusable::LinkDown { ifindex: 4 }));
        let mut no_carrier = link();
        no_carrier.lower_up = false;
        let (res, _) = classify(ip("10.0.0.2"), &route(None), Some(&no_carrier), None);
        assert_eq!(res, Resolution::Unusable(Unusable::LinkDown { ifindex: 4 }));
        let (res, _) = classify(ip("10.0.0.2"), &route(None), None, None);
        assert_eq!(res, Resolution::Unusable(Unusable::LinkDown { ifindex: 4 }));

        let mut tun = link();
        tun.mac = None;
        let (res, kick) = classify(ip("10.0.0.2"), &route(None), Some(&tun), None);
        assert_eq!(
            res,
            Resolution::Unusable(Unusable::NotEthernet { ifindex: 4 })
        );
        assert!(!kick);
        assert_eq!(res.hop(), None);
        assert_eq!(res.mac(), None);
    }

    #[test]
    fn diff_reports_only_what_matters() {
        let hop = classify(ip("10.0.0.2"), &route(None), Some(&link()), None)
            .0
            .hop()
            .cloned()
            .unwrap();
        let pending = |state| Resolution::Pending {
            hop: hop.clone(),
            state,
        };
        let ready = Resolution::Ready {
            hop: hop.clone(),
            mac: PEER_MAC,
        };
        let mut old = BTreeMap::new();
        old.insert(ip("10.0.0.2"), pending(NudState::INCOMPLETE));
        old.insert(ip("10.0.0.3"), pending(NudState::NONE));
        old.insert(ip("10.0.0.9"), ready.clone());

        let mut new = BTreeMap::new();
        // Only the neighbour state changed: not a change.
        new.insert(ip("10.0.0.2"), pending(NudState::FAILED));
        // Resolved: a change.
        new.insert(ip("10.0.0.3"), ready.clone());
        // New target.
        new.insert(
            ip("10.0.0.4"),
            Resolution::Unusable(Unusable::NoRoute { errno: 101 }),
        );
        // 10.0.0.9 removed.
        let c = diff(&old, &new);
        let summary: Vec<_> = c
            .iter()
            .map(|c| (c.target, c.before.is_some(), c.after.is_some()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (ip("10.0.0.3"), true, true),
                (ip("10.0.0.4"), false, true),
                (ip("10.0.0.9"), true, false),
            ]
        );
        assert_eq!(
            c[0].after.as_ref().and_then(Resolution::mac),
            Some(PEER_MAC)
        );
        assert!(diff(&new, &new).is_empty());

        // A new MAC for the same next hop is a change.
        let mut moved = new.clone();
        moved.insert(
            ip("10.0.0.3"),
            Resolution::Ready {
                hop,
                mac: [2, 0, 0, 0, 0, 0x22],
            },
        );
        assert_eq!(diff(&new, &moved).len(), 1);
    }
}
