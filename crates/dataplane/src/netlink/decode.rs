//! From `netlink-packet-route` messages to this module's plain types.
//!
//! Pure functions: every odd reply (a family we do not handle, a missing
//! attribute, a hardware address that is not 6 bytes) gives `None` or a
//! field left empty, never a panic.

use std::net::IpAddr;

use netlink_packet_route::{
    AddressFamily,
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteVia},
};

use super::{IfAddr, Link, Mac, Neigh, NudState, Route, RouteKind};

/// A 6-byte, non-zero hardware address.
pub(super) fn mac_from(bytes: &[u8]) -> Option<Mac> {
    let mac: Mac = bytes.try_into().ok()?;
    (mac != [0; 6]).then_some(mac)
}

fn ip_from_route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn ip_from_via(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A neighbour entry of the IPv4 (ARP) or IPv6 (ND) table; `None` for other
/// families (bridge FDB, ...) or an entry without a destination.
pub(super) fn neigh_from(msg: &NeighbourMessage) -> Option<Neigh> {
    if !matches!(
        msg.header.family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return None;
    }
    let mut addr = None;
    let mut mac = None;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                addr = Some(IpAddr::V4(*v4));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                addr = Some(IpAddr::V6(*v6));
            }
            NeighbourAttribute::LinkLayerAddress(ll) => mac = mac_from(ll),
            _ => {}
        }
    }
    Some(Neigh {
        ifindex: msg.header.ifindex,
        addr: addr?,
        mac,
        state: NudState(u16::from(msg.header.state)),
        router: msg.header.flags.contains(NeighbourFlags::Router),
    })
}

/// A link without its addresses (they come from another dump).
pub(super) fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        ifindex: msg.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: msg.header.flags.contains(LinkFlags::Up),
        lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
        ipv4: Vec::new(),
        ipv6: Vec::new(),
    };
    let ether = msg.header.link_layer_type == LinkLayerType::Ether;
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Address(hw) if ether => link.mac = mac_from(hw),
            _ => {}
        }
    }
    link
}

/// An interface address with the index of its link; `None` for families
/// other than IPv4/IPv6.
pub(super) fn addr_from(msg: &AddressMessage) -> Option<(u32, IfAddr)> {
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(msg.header.flags.bits());
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
    // point-to-point links and the same as IFA_LOCAL elsewhere. IPv6 often
    // sends only IFA_ADDRESS.
    let addr = local.or(address)?;
    let family_ok = match msg.header.family {
        AddressFamily::Inet => addr.is_ipv4(),
        AddressFamily::Inet6 => addr.is_ipv6(),
        _ => false,
    };
    family_ok.then(|| {
        (
            msg.header.index,
            IfAddr {
                addr,
                prefix_len: msg.header.prefix_len,
                flags,
                scope: u8::from(msg.header.scope),
            },
        )
    })
}

/// A route: the answer to `RTM_GETROUTE` for one address, or one entry of a
/// route dump. For a multipath route, its first path. `None` without an
/// output interface (blackhole, unreachable, ...).
pub(super) fn route_from(msg: &RouteMessage) -> Option<Route> {
    let mut oif = None;
    let mut gateway = None;
    let mut prefsrc = None;
    let mut table = u32::from(msg.header.table);
    let mut priority = 0;
    let mut first_path = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(g) => gateway = ip_from_route_addr(g),
            RouteAttribute::Via(v) => gateway = ip_from_via(v),
            RouteAttribute::PrefSource(s) => prefsrc = ip_from_route_addr(s),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => priority = *p,
            RouteAttribute::MultiPath(hops) if first_path.is_none() => {
                first_path = hops.first().map(|h| {
                    let gw = h.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => ip_from_route_addr(g),
                        RouteAttribute::Via(v) => ip_from_via(v),
                        _ => None,
                    });
                    (h.interface_index, gw)
                });
            }
            _ => {}
        }
    }
    if oif.is_none()
        && let Some((i, gw)) = first_path
    {
        oif = Some(i);
        gateway = gw;
    }
    Some(Route {
        oif: oif.filter(|&i| i != 0)?,
        gateway,
        prefsrc,
        kind: RouteKind::from_raw(u8::from(msg.header.kind)),
        table,
        priority,
        prefix_len: msg.header.destination_prefix_length,
    })
}

/// True for the main table (where `ip route` puts routes by default).
pub(super) fn in_main_table(r: &Route) -> bool {
    r.table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use netlink_packet_route::{
        address::AddressScope,
        neighbour::NeighbourState,
        route::{RouteNextHop, RouteType},
    };

    use super::*;

    #[test]
    fn mac_must_be_six_non_zero_bytes() {
        assert_eq!(mac_from(&[2, 0, 0, 0, 0, 1]), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(mac_from(&[0; 6]), None);
        assert_eq!(mac_from(&[1, 2, 3, 4]), None);
        assert_eq!(mac_from(&[1; 20]), None); // InfiniBand-sized
    }

    fn neigh_msg(family: AddressFamily, state: NeighbourState) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = 7;
        m.header.state = state;
        m
    }

    #[test]
    fn neighbour_v4_reachable_with_mac() {
        let mut m = neigh_msg(AddressFamily::Inet, NeighbourState::Reachable);
        m.header.flags = NeighbourFlags::Router;
        m.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::new(10, 0, 0, 2))),
            NeighbourAttribute::LinkLayerAddress(vec![2, 1, 2, 3, 4, 5]),
        ];
        let n = neigh_from(&m).unwrap();
        assert_eq!(n.ifindex, 7);
        assert_eq!(n.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(n.mac, Some([2, 1, 2, 3, 4, 5]));
        assert_eq!(n.state, NudState::REACHABLE);
        assert!(n.router);
        assert!(n.usable());
    }

    #[test]
    fn neighbour_incomplete_without_mac_is_not_usable() {
        let mut m = neigh_msg(AddressFamily::Inet6, NeighbourState::Incomplete);
        m.attributes = vec![NeighbourAttribute::Destination(NeighbourAddress::Inet6(
            Ipv6Addr::LOCALHOST,
        ))];
        let n = neigh_from(&m).unwrap();
        assert_eq!(n.state, NudState::INCOMPLETE);
        assert_eq!(n.mac, None);
        assert!(!n.usable());
    }

    #[test]
    fn neighbour_other_family_or_no_destination_is_skipped() {
        let m = neigh_msg(AddressFamily::Bridge, NeighbourState::Permanent);
        assert!(neigh_from(&m).is_none());
        let m = neigh_msg(AddressFamily::Inet, NeighbourState::Permanent);
        assert!(neigh_from(&m).is_none());
    }

    #[test]
    fn link_mac_only_for_ethernet() {
        let mut m = LinkMessage::default();
        m.header.index = 3;
        m.header.link_layer_type = LinkLayerType::Ether;
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        m.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Mtu(9000),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 9]),
        ];
        let l = link_from(&m);
        assert_eq!((l.ifindex, l.name.as_str(), l.mtu), (3, "veth0", 9000));
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 9]));
        assert!(l.up && l.lower_up);

        m.header.link_layer_type = LinkLayerType::Loopback;
        m.header.flags = LinkFlags::empty();
        let l = link_from(&m);
        assert_eq!(l.mac, None);
        assert!(!l.up);
    }

    #[test]
    fn address_prefers_local_and_checks_family() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.index = 4;
        m.header.prefix_len = 24;
        m.attributes = vec![
            AddressAttribute::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))),
            AddressAttribute::Local(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ];
        let (idx, a) = addr_from(&m).unwrap();
        assert_eq!(idx, 4);
        assert_eq!(a.addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(a.prefix_len, 24);

        m.header.family = AddressFamily::Inet6;
        assert!(addr_from(&m).is_none(), "family and address disagree");

        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.scope = AddressScope::Link;
        m.attributes = vec![AddressAttribute::Address("fe80::1".parse().unwrap())];
        let (_, a) = addr_from(&m).unwrap();
        assert!(a.is_link_local());
        assert!(!a.is_tentative());
    }

    #[test]
    fn route_with_gateway_and_source() {
        let mut m = RouteMessage::default();
        m.header.kind = RouteType::Unicast;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.attributes = vec![
            RouteAttribute::Oif(5),
            RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(10, 0, 0, 254))),
            RouteAttribute::PrefSource(RouteAddress::Inet(Ipv4Addr::new(10, 0, 0, 1))),
        ];
        let r = route_from(&m).unwrap();
        assert_eq!(r.oif, 5);
        assert_eq!(r.gateway, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))));
        assert_eq!(r.prefsrc, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(r.kind, RouteKind::Unicast);
        assert!(in_main_table(&r));
    }

    #[test]
    fn route_via_ipv6_next_hop_for_ipv4() {
        let mut m = RouteMessage::default();
        m.attributes = vec![
            RouteAttribute::Oif(2),
            RouteAttribute::Via(RouteVia::Inet6("fe80::1".parse().unwrap())),
        ];
        let r = route_from(&m).unwrap();
        assert_eq!(r.gateway, Some("fe80::1".parse().unwrap()));
    }

    #[test]
    fn multipath_takes_the_first_path() {
        let mut h1 = RouteNextHop::default();
        h1.interface_index = 8;
        h1.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(
            192, 0, 2, 1,
        )))];
        let mut h2 = RouteNextHop::default();
        h2.interface_index = 9;
        let mut m = RouteMessage::default();
        m.attributes = vec![RouteAttribute::MultiPath(vec![h1, h2])];
        let r = route_from(&m).unwrap();
        assert_eq!(r.oif, 8);
        assert_eq!(r.gateway, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    }

    #[test]
    fn route_without_interface_is_none() {
        let mut m = RouteMessage::default();
        m.header.kind = RouteType::BlackHole;
        assert!(route_from(&m).is_none());
        m.attributes = vec![RouteAttribute::Oif(0)];
        assert!(route_from(&m).is_none());
    }
}
