//! Links, routes and neighbours from the kernel, over rtnetlink.
//!
//! The director rewrites Ethernet headers itself, so for every real server
//! it must know the egress interface, that interface's MAC and MTU, and the
//! MAC of the next hop (the server itself on a shared segment, or the
//! gateway toward it). None of it is configured by hand: this module asks
//! the kernel, which keeps doing ARP / neighbour discovery on the director's
//! behalf (the XDP program passes ARP and ND frames to the kernel).
//!
//! - [`Netlink`] is a blocking rtnetlink handle for the control thread
//!   (never for packet workers): [`Netlink::links`], [`Netlink::route_get`]
//!   (`ip route get`), [`Netlink::default_route`], [`Netlink::neighbours`]
//!   (`ip neigh`), and [`Netlink::resolve`], which makes the kernel probe an
//!   address without sending any traffic through a userspace socket.
//! - [`NextHopResolver`] turns a list of real-server addresses into
//!   [`Resolution`]s, kicks resolution for the ones without a usable MAC, and
//!   reports what changed, to be called about once a second.
//!
//! A destination without a [`Resolution::Ready`] must not be sent to.
//!
//! ```no_run
//! use xvs_dataplane::netlink::{Netlink, NextHopResolver};
//!
//! let mut nl = Netlink::open()?;
//! let mut resolver = NextHopResolver::new();
//! let servers = ["192.0.2.10".parse()?, "2001:db8::10".parse()?];
//! loop {
//!     for change in resolver.refresh(&mut nl, &servers)? {
//!         println!("{}: {:?}", change.target, change.after);
//!     }
//!     // ... publish a new snapshot if anything changed ...
//!     std::thread::sleep(std::time::Duration::from_secs(1));
//! }
//! # #[allow(unreachable_code)] Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decoding is done by `netlink-packet-route` (the rust-netlink project's
//! typed messages, also used by `rtnetlink`); the socket is
//! `netlink-sys`'s plain blocking one. No unsafe code here.

mod decode;
mod resolver;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, ParseableParametrized,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::AddressMessage,
    link::LinkMessage,
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage},
    route::{RouteAddress, RouteAttribute, RouteMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::{TimeVal, TimeValLike};
use xvs_conntrack::Af;

pub use resolver::{Change, NextHop, NextHopResolver, Resolution, Unusable, classify};

/// A MAC address, as the rest of the data plane spells it.
pub type Mac = [u8; 6];

/// How long a request waits for the kernel's answer by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a dump that raced with a table change is restarted.
const DUMP_TRIES: u32 = 5;

/// Errors of the netlink calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket itself failed (open, send, receive).
    #[error("{op}: netlink socket: {source}")]
    Io {
        /// The request.
        op: &'static str,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the handle's timeout.
    #[error("{op}: no answer from the kernel within {timeout:?}")]
    Timeout {
        /// The request.
        op: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The kernel refused the request (`NLMSG_ERROR` with an errno).
    #[error(
        "{op}: the kernel answered: {}{}",
        std::io::Error::from_raw_os_error(*.errno),
        .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Kernel {
        /// The request.
        op: &'static str,
        /// Positive errno (`libc::ENOENT`, ...).
        errno: i32,
        /// The kernel's extended-ack message, if any.
        message: Option<String>,
    },
    /// The reply could not be understood.
    #[error("{op}: malformed reply: {detail}")]
    Malformed {
        /// The request.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A dump kept being interrupted by concurrent changes of the table.
    #[error("{op}: dump interrupted by concurrent changes {tries} times in a row")]
    DumpInterrupted {
        /// The request.
        op: &'static str,
        /// How many times it was tried.
        tries: u32,
    },
    /// No interface has this name or index.
    #[error("no interface {0}")]
    NoSuchLink(String),
}

impl Error {
    /// The kernel's errno, for [`Error::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    fn io(op: &'static str, source: impl Into<std::io::Error>) -> Error {
        Error::Io {
            op,
            source: source.into(),
        }
    }
}

/// Result of the netlink calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Neighbour entry state: the kernel's `NUD_*` bits (`ndm_state`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NudState(pub u16);

impl NudState {
    /// No state (an entry just created, or no entry at all).
    pub const NONE: NudState = NudState(0x00);
    /// Resolution in progress, no address yet.
    pub const INCOMPLETE: NudState = NudState(0x01);
    /// Confirmed recently.
    pub const REACHABLE: NudState = NudState(0x02);
    /// Address known but not confirmed recently.
    pub const STALE: NudState = NudState(0x04);
    /// Waiting a little before probing a stale entry.
    pub const DELAY: NudState = NudState(0x08);
    /// Probing a stale entry with unicast requests.
    pub const PROBE: NudState = NudState(0x10);
    /// Resolution failed.
    pub const FAILED: NudState = NudState(0x20);
    /// No resolution needed on this device.
    pub const NOARP: NudState = NudState(0x40);
    /// Static entry.
    pub const PERMANENT: NudState = NudState(0x80);

    /// States whose link-layer address may be used (the kernel's `NUD_VALID`).
    pub const VALID: NudState = NudState(0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80);
    /// States in which the kernel is already resolving or re-confirming.
    pub const IN_PROGRESS: NudState = NudState(0x01 | 0x08 | 0x10);

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True if any bit of `other` is set.
    pub const fn intersects(self, other: NudState) -> bool {
        self.0 & other.0 != 0
    }

    /// The link-layer address of an entry in this state may be used.
    pub const fn is_valid(self) -> bool {
        self.intersects(Self::VALID)
    }

    /// Resolution should be (re)started: no entry, failed, or stale (a stale
    /// entry is re-confirmed by a unicast probe; the director's own traffic
    /// bypasses the kernel and would never confirm it).
    pub const fn wants_kick(self) -> bool {
        self.0 == 0 || self.intersects(NudState(Self::FAILED.0 | Self::STALE.0))
    }
}

impl fmt::Display for NudState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = [
            "incomplete",
            "reachable",
            "stale",
            "delay",
            "probe",
            "failed",
            "noarp",
            "permanent",
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut sep = "";
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        if self.0 >> 8 != 0 {
            write!(f, "{sep}{:#x}", self.0 & 0xff00)?;
        }
        Ok(())
    }
}

impl fmt::Debug for NudState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NudState({self})")
    }
}

/// One entry of the kernel's ARP or neighbour-discovery table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neigh {
    /// Interface index.
    pub ifindex: u32,
    /// IPv4 or IPv6 address.
    pub addr: IpAddr,
    /// Link-layer address, if the entry has a 6-byte non-zero one.
    pub mac: Option<Mac>,
    /// `NUD_*` state.
    pub state: NudState,
    /// The neighbour is an IPv6 router (`NTF_ROUTER`).
    pub router: bool,
}

impl Neigh {
    /// Frames may be sent to [`Neigh::mac`]: it is known and the state is
    /// REACHABLE, STALE, DELAY, PROBE, PERMANENT or NOARP.
    pub fn usable(&self) -> bool {
        self.mac.is_some() && self.state.is_valid()
    }
}

/// An address of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_F_*` flags.
    pub flags: u32,
    /// `RT_SCOPE_*` (0 universe, 253 link, 254 host).
    pub scope: u8,
}

impl IfAddr {
    const IFA_F_SECONDARY: u32 = 0x01;
    const IFA_F_DADFAILED: u32 = 0x08;
    const IFA_F_DEPRECATED: u32 = 0x20;
    const IFA_F_TENTATIVE: u32 = 0x40;

    /// An IPv6 link-local address (`fe80::/10`).
    pub fn is_link_local(&self) -> bool {
        match self.addr {
            IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
            IpAddr::V4(a) => a.is_link_local(),
        }
    }

    /// Duplicate address detection has not finished (or failed): the kernel
    /// does not use it as a source yet.
    pub fn is_tentative(&self) -> bool {
        self.flags & (Self::IFA_F_TENTATIVE | Self::IFA_F_DADFAILED) != 0
    }

    /// A secondary IPv4 address (another of the same subnet came first).
    pub fn is_secondary(&self) -> bool {
        self.flags & Self::IFA_F_SECONDARY != 0
    }

    fn rank(&self) -> u8 {
        // Lower is better: usable global, deprecated global, link-local,
        // tentative.
        if self.is_tentative() {
            3
        } else if self.is_link_local() {
            2
        } else if self.flags & Self::IFA_F_DEPRECATED != 0 || self.is_secondary() {
            1
        } else {
            0
        }
    }
}

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Name (`eth0`).
    pub name: String,
    /// Ethernet address; `None` for non-Ethernet links (loopback, tun, ...).
    pub mac: Option<Mac>,
    /// MTU (largest IP packet).
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// IPv4 addresses, primary ones first.
    pub ipv4: Vec<IfAddr>,
    /// IPv6 addresses: global usable ones first, then deprecated,
    /// link-local, tentative.
    pub ipv6: Vec<IfAddr>,
}

impl Link {
    /// The address to use as an IPv4 source on this link: the first primary
    /// address.
    pub fn source_v4(&self) -> Option<Ipv4Addr> {
        self.ipv4.iter().find_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    /// The address to use as an IPv6 source on this link: a global one if
    /// any, else the link-local one (never a tentative one).
    pub fn source_v6(&self) -> Option<Ipv6Addr> {
        self.ipv6
            .iter()
            .filter(|a| !a.is_tentative())
            .find_map(|a| match a.addr {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
    }

    fn sort_addresses(&mut self) {
        self.ipv4.sort_by_key(IfAddr::rank);
        self.ipv6.sort_by_key(IfAddr::rank);
    }
}

/// The kind of a route (`RTN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// A gateway or direct route: something to send to.
    Unicast,
    /// The address is the host's own.
    Local,
    /// A broadcast address.
    Broadcast,
    /// An anycast address of the host.
    Anycast,
    /// A multicast route.
    Multicast,
    /// Any other `RTN_*` value (blackhole, unreachable, prohibit, ...).
    Other(u8),
}

impl RouteKind {
    /// From the `rtm_type` byte.
    pub fn from_raw(raw: u8) -> RouteKind {
        match raw {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            4 => RouteKind::Anycast,
            5 => RouteKind::Multicast,
            other => RouteKind::Other(other),
        }
    }
}

/// A route, as `ip route get` or `ip route show` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Output interface index.
    pub oif: u32,
    /// Gateway, if the destination is not on-link.
    pub gateway: Option<IpAddr>,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// Route type.
    pub kind: RouteKind,
    /// Routing table (254 = main, 255 = local).
    pub table: u32,
    /// Metric (`RTA_PRIORITY`); 0 when absent.
    pub priority: u32,
    /// Destination prefix length (32/128 in `route_get` answers).
    pub prefix_len: u8,
}

impl Route {
    /// The address whose MAC frames to `dst` must carry: the gateway, or
    /// `dst` itself when it is on-link.
    pub fn next_hop(&self, dst: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(dst)
    }
}

/// Whether a request is a dump, or a single request answered by an ACK.
#[derive(Clone, Copy, Debug)]
enum Req {
    Dump,
    Do { extra_flags: u16 },
}

/// A blocking rtnetlink handle, opened in the network namespace of the
/// calling thread. Meant for a control thread: each call is a few
/// system calls and may block up to its timeout.
#[derive(Debug)]
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    timeout: Duration,
    skipped: u64,
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket with the [`DEFAULT_TIMEOUT`].
    pub fn open() -> Result<Netlink> {
        const OP: &str = "open";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(OP, e))?;
        sock.bind_auto().map_err(|e| Error::io(OP, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io(OP, e))?;
        // Both are only for better errors (the kernel's reason in text, and
        // no echo of our request in errors); older kernels lack them.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let mut nl = Netlink {
            sock,
            seq: 0,
            buf: vec![0; 32 * 1024],
            timeout: DEFAULT_TIMEOUT,
            skipped: 0,
        };
        nl.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(nl)
    }

    /// Sets how long each receive waits for the kernel.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        // Zero means "wait forever" to SO_RCVTIMEO; keep at least 1 µs.
        let micros = i64::try_from(timeout.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        setsockopt(&self.sock, ReceiveTimeout, &TimeVal::microseconds(micros))
            .map_err(|e| Error::io("set timeout", e))?;
        self.timeout = timeout;
        Ok(())
    }

    /// How many messages of dumps were skipped so far because
    /// `netlink-packet-route` could not decode them (an attribute it gets
    /// wrong on this kernel, say). A skipped link or neighbour is simply
    /// absent from the answer.
    pub fn decode_skips(&self) -> u64 {
        self.skipped
    }

    /// Every interface with its MAC, MTU, flags and IPv4/IPv6 addresses
    /// (`ip addr`), ordered by index.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut links = self.links_without_addresses()?;
        let by_index: HashMap<u32, usize> = links
            .iter()
            .enumerate()
            .map(|(i, l)| (l.ifindex, i))
            .collect();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = AddressMessage::default();
            req.header.family = family;
            for m in self.request(
                "dump addresses",
                RouteNetlinkMessage::GetAddress(req),
                Req::Dump,
            )? {
                let RouteNetlinkMessage::NewAddress(m) = m else {
                    continue;
                };
                let Some((ifindex, a)) = decode::addr_from(&m) else {
                    continue;
                };
                let Some(&i) = by_index.get(&ifindex) else {
                    continue;
                };
                match a.addr {
                    IpAddr::V4(_) => links[i].ipv4.push(a),
                    IpAddr::V6(_) => links[i].ipv6.push(a),
                }
            }
        }
        links.iter_mut().for_each(Link::sort_addresses);
        Ok(links)
    }

    /// The interface named `name`, with its addresses.
    pub fn link_by_name(&mut self, name: &str) -> Result<Link> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::NoSuchLink(format!("named {name:?}")))
    }

    /// The interface with index `ifindex`, with its addresses.
    pub fn link_by_index(&mut self, ifindex: u32) -> Result<Link> {
        self.links()?
            .into_iter()
            .find(|l| l.ifindex == ifindex)
            .ok_or_else(|| Error::NoSuchLink(format!("with index {ifindex}")))
    }

    /// Every interface, without addresses (one dump instead of three).
    fn links_without_addresses(&mut self) -> Result<Vec<Link>> {
        let mut links: Vec<Link> = self
            .request(
                "dump links",
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                Req::Dump,
            )?
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(decode::link_from(l)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|l| l.ifindex);
        Ok(links)
    }

    /// The kernel's route to `dst` (`ip route get DST`): output interface,
    /// gateway if any, preferred source. No route is an [`Error::Kernel`]
    /// (`ENETUNREACH`, `EHOSTUNREACH`, `EINVAL` for a blackhole, ...).
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Route> {
        const OP: &str = "route get";
        let mut req = RouteMessage::default();
        let (family, len) = match dst {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        req.header.address_family = family;
        req.header.destination_prefix_length = len;
        req.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let replies = self.request(
            OP,
            RouteNetlinkMessage::GetRoute(req),
            Req::Do { extra_flags: 0 },
        )?;
        let reply = replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .ok_or_else(|| Error::Malformed {
                op: OP,
                detail: "no route in the answer".into(),
            })?;
        decode::route_from(reply).ok_or_else(|| Error::Malformed {
            op: OP,
            detail: "route without an output interface".into(),
        })
    }

    /// The default route of the main table for `af` (`ip route show default`),
    /// the one with the lowest metric; for a multipath route, its first
    /// path. `None` if there is none.
    pub fn default_route(&mut self, af: Af) -> Result<Option<Route>> {
        let mut req = RouteMessage::default();
        req.header.address_family = match af {
            Af::V4 => AddressFamily::Inet,
            Af::V6 => AddressFamily::Inet6,
        };
        let routes = self.request("dump routes", RouteNetlinkMessage::GetRoute(req), Req::Dump)?;
        Ok(routes
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.destination_prefix_length == 0 => {
                    decode::route_from(r)
                }
                _ => None,
            })
            .filter(|r| r.kind == RouteKind::Unicast && decode::in_main_table(r))
            .min_by_key(|r| r.priority))
    }

    /// Every IPv4 (ARP) and IPv6 (ND) neighbour entry (`ip neigh`).
    pub fn neighbours(&mut self) -> Result<Vec<Neigh>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = NeighbourMessage::default();
            req.header.family = family;
            let replies = self.request(
                "dump neighbours",
                RouteNetlinkMessage::GetNeighbour(req),
                Req::Dump,
            )?;
            out.extend(replies.iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => decode::neigh_from(n),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// The neighbour entry for `addr` on `ifindex` (`ip neigh get`), `None`
    /// if there is none.
    pub fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> Result<Option<Neigh>> {
        let req = neigh_request(ifindex, addr);
        match self.request(
            "neighbour get",
            RouteNetlinkMessage::GetNeighbour(req),
            Req::Do { extra_flags: 0 },
        ) {
            Ok(replies) => Ok(replies.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => decode::neigh_from(n),
                _ => None,
            })),
            Err(e) if e.errno() == Some(Errno::ENOENT as i32) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes the kernel resolve `addr` on `ifindex` (send an ARP request or
    /// a neighbour solicitation), creating the entry if there is none and
    /// re-probing it if it is STALE or FAILED. No traffic goes through a
    /// userspace socket: this is `RTM_NEWNEIGH` with `NTF_USE` and
    /// `NLM_F_CREATE | NLM_F_REPLACE`, the kernel's `neigh_event_send()` as
    /// if a packet were waiting. Returns once the kernel accepted the
    /// request; the answer shows up later in [`Netlink::neighbours`].
    pub fn resolve(&mut self, ifindex: u32, addr: IpAddr) -> Result<()> {
        let mut req = neigh_request(ifindex, addr);
        req.header.flags = NeighbourFlags::Use;
        self.request(
            "resolve neighbour",
            RouteNetlinkMessage::NewNeighbour(req),
            Req::Do {
                extra_flags: NLM_F_CREATE | NLM_F_REPLACE,
            },
        )
        .map(drop)
    }

    /// Sends one request and collects its answers, restarting dumps that
    /// raced with table changes.
    fn request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        req: Req,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (msgs, interrupted) = self.exchange(op, &msg, req)?;
            if !interrupted {
                return Ok(msgs);
            }
            if tries >= DUMP_TRIES {
                return Err(Error::DumpInterrupted { op, tries });
            }
        }
    }

    fn exchange(
        &mut self,
        op: &'static str,
        msg: &RouteNetlinkMessage,
        req: Req,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool)> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST
            | match req {
                Req::Dump => NLM_F_DUMP,
                Req::Do { extra_flags } => NLM_F_ACK | extra_flags,
            };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg.clone()));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0).map_err(|e| Error::io(op, e))?;

        let mut answer = Answer::new(self.seq, matches!(req, Req::Dump));
        loop {
            let n = self.recv_datagram(op)?;
            let done = answer.take(op, &self.buf[..n]);
            self.skipped += std::mem::take(&mut answer.skipped);
            if done? {
                return Ok((answer.msgs, answer.interrupted));
            }
        }
    }

    /// Receives one whole datagram into `self.buf`, growing it if needed.
    fn recv_datagram(&mut self, op: &'static str) -> Result<usize> {
        let mut peeked = false;
        loop {
            let flags = if peeked {
                MsgFlags::empty()
            } else {
                // The datagram's real length, even if it does not fit.
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC
            };
            match nix::sys::socket::recv(self.sock.as_raw_fd(), &mut self.buf, flags) {
                Ok(len) if !peeked => {
                    if len > self.buf.len() {
                        self.buf.resize(len, 0);
                    }
                    peeked = true;
                }
                Ok(len) => return Ok(len.min(self.buf.len())),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    return Err(Error::Timeout {
                        op,
                        timeout: self.timeout,
                    });
                }
                Err(e) => return Err(Error::io(op, e)),
            }
        }
    }
}

fn neigh_request(ifindex: u32, addr: IpAddr) -> NeighbourMessage {
    let mut req = NeighbourMessage::default();
    req.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    req.header.ifindex = ifindex;
    req.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            addr,
        )));
    req
}

/// The answers to one request, gathered datagram by datagram. Separate from
/// the socket so that it can be fed crafted bytes in tests.
#[derive(Debug)]
struct Answer {
    seq: u32,
    dump: bool,
    msgs: Vec<RouteNetlinkMessage>,
    interrupted: bool,
    skipped: u64,
}

impl Answer {
    fn new(seq: u32, dump: bool) -> Answer {
        Answer {
            seq,
            dump,
            msgs: Vec::new(),
            interrupted: false,
            skipped: 0,
        }
    }

    /// Takes one datagram; `Ok(true)` once the answer is complete.
    fn take(&mut self, op: &'static str, datagram: &[u8]) -> Result<bool> {
        for frame in wire::Frames::new(datagram) {
            let frame = frame.map_err(|detail| Error::Malformed { op, detail })?;
            if frame.seq != self.seq {
                // A late answer to an earlier request that timed out.
                continue;
            }
            let status = match frame.msg_type {
                wire::NLMSG_NOOP => continue,
                wire::NLMSG_ERROR => {
                    wire::parse_error(&frame).map_err(|detail| Error::Malformed { op, detail })?
                }
                wire::NLMSG_DONE => wire::parse_done(&frame),
                wire::NLMSG_OVERRUN => {
                    return Err(Error::Malformed {
                        op,
                        detail: "NLMSG_OVERRUN".into(),
                    });
                }
                ty => {
                    self.interrupted |= frame.flags & wire::NLM_F_DUMP_INTR != 0;
                    match RouteNetlinkMessage::parse_with_param(frame.payload(), ty) {
                        Ok(m) => self.msgs.push(m),
                        Err(_) if self.dump => self.skipped += 1,
                        Err(e) => {
                            return Err(Error::Malformed {
                                op,
                                detail: format!("message type {ty}: {e}"),
                            });
                        }
                    }
                    continue;
                }
            };
            return if status.errno == 0 {
                Ok(true)
            } else {
                Err(Error::Kernel {
                    op,
                    errno: status.errno,
                    message: status.message,
                })
            };
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nud_state_decoding() {
        assert_eq!(NudState::NONE.to_string(), "none");
        assert_eq!(NudState::REACHABLE.to_string(), "reachable");
        assert_eq!(NudState(0x05).to_string(), "incomplete|stale");
        assert_eq!(NudState(0x0120).to_string(), "failed|0x100");
        assert_eq!(format!("{:?}", NudState::STALE), "NudState(stale)");
        for s in [
            NudState::REACHABLE,
            NudState::STALE,
            NudState::DELAY,
            NudState::PROBE,
            NudState::NOARP,
            NudState::PERMANENT,
        ] {
            assert!(s.is_valid(), "{s}");
        }
        for s in [NudState::NONE, NudState::INCOMPLETE, NudState::FAILED] {
            assert!(!s.is_valid(), "{s}");
        }
        for s in [NudState::NONE, NudState::FAILED, NudState::STALE] {
            assert!(s.wants_kick(), "{s}");
        }
        for s in [
            NudState::INCOMPLETE,
            NudState::REACHABLE,
            NudState::DELAY,
            NudState::PROBE,
            NudState::NOARP,
            NudState::PERMANENT,
        ] {
            assert!(!s.wants_kick(), "{s}");
        }
    }

    #[test]
    fn usable_needs_a_mac_and_a_valid_state() {
        let mut n = Neigh {
            ifindex: 1,
            addr: "10.0.0.1".parse().unwrap(),
            mac: Some([2, 0, 0, 0, 0, 1]),
            state: NudState::STALE,
            router: false,
        };
        assert!(n.usable());
        n.state = NudState::FAILED;
        assert!(!n.usable());
        n.state = NudState::PERMANENT;
        n.mac = None;
        assert!(!n.usable());
    }

    #[test]
    fn link_sources_prefer_global_v6() {
        let a = |s: &str, flags| IfAddr {
            addr: s.parse().unwrap(),
            prefix_len: 64,
            flags,
            scope: 0,
        };
        let mut l = Link {
            ifindex: 2,
            name: "x".into(),
            mac: None,
            mtu: 1500,
            up: true,
            lower_up: true,
            ipv4: vec![a("10.0.0.2", 0x01), a("10.0.0.1", 0)],
            ipv6: vec![
                a("fe80::1", 0x80),
                a("2001:db8::9", 0x40), // tentative
                a("2001:db8::1", 0x80),
            ],
        };
        l.sort_addresses();
        assert_eq!(l.source_v4(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(l.source_v6(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(l.ipv6.len(), 3, "all addresses are kept");
        l.ipv6.remove(0);
        assert_eq!(l.source_v6(), Some("fe80::1".parse().unwrap()));
        l.ipv6.retain(|a| a.is_tentative());
        assert_eq!(l.source_v6(), None);
    }

    #[test]
    fn route_next_hop() {
        let mut r = Route {
            oif: 2,
            gateway: None,
            prefsrc: None,
            kind: RouteKind::Unicast,
            table: 254,
            priority: 0,
            prefix_len: 32,
        };
        let dst: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(r.next_hop(dst), dst);
        r.gateway = Some("192.0.2.1".parse().unwrap());
        assert_eq!(r.next_hop(dst), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(RouteKind::from_raw(2), RouteKind::Local);
        assert_eq!(RouteKind::from_raw(6), RouteKind::Other(6));
    }

    fn raw(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn neighbour_bytes(state: u16) -> Vec<u8> {
        // struct ndmsg: family, pad[3], ifindex, state, flags, type;
        // then NDA_DST 10.0.0.2 and NDA_LLADDR.
        let mut p = vec![2, 0, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        p.extend_from_slice(&state.to_ne_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(&[10, 0, 0, 2]);
        p.extend_from_slice(&10u16.to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0, 0]);
        p
    }

    const RTM_NEWNEIGH: u16 = 28;

    #[test]
    fn answer_collects_a_dump_and_skips_stale_sequence_numbers() {
        let mut a = Answer::new(7, true);
        let mut d = raw(RTM_NEWNEIGH, 2, 6, &neighbour_bytes(0x02)); // old request
        d.extend(raw(RTM_NEWNEIGH, 2, 7, &neighbour_bytes(0x02)));
        assert!(!a.take("t", &d).unwrap());
        let done = raw(wire::NLMSG_DONE, 2, 7, &0i32.to_ne_bytes());
        assert!(a.take("t", &done).unwrap());
        assert_eq!(a.msgs.len(), 1);
        assert!(!a.interrupted);
        let RouteNetlinkMessage::NewNeighbour(m) = &a.msgs[0] else {
            panic!("{:?}", a.msgs[0]);
        };
        let n = decode::neigh_from(m).unwrap();
        assert_eq!(n.addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(n.mac, Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(n.ifindex, 3);
        assert!(n.usable());
    }

    #[test]
    fn answer_flags_interrupted_dumps_and_skips_undecodable() {
        let mut a = Answer::new(1, true);
        let mut d = raw(
            RTM_NEWNEIGH,
            2 | wire::NLM_F_DUMP_INTR,
            1,
            &neighbour_bytes(0x04),
        );
        d.extend(raw(RTM_NEWNEIGH, 2, 1, &[2, 0])); // truncated ndmsg
        d.extend(raw(wire::NLMSG_DONE, 2, 1, &0i32.to_ne_bytes()));
        assert!(a.take("t", &d).unwrap());
        assert!(a.interrupted);
        assert_eq!(a.msgs.len(), 1);
        assert_eq!(a.skipped, 1);
    }

    #[test]
    fn answer_maps_errors() {
        let mut a = Answer::new(3, false);
        let e = a
            .take("t", &raw(wire::NLMSG_ERROR, 0, 3, &(-101i32).to_ne_bytes()))
            .unwrap_err();
        assert_eq!(e.errno(), Some(101));
        assert!(e.to_string().starts_with("t: the kernel answered"), "{e}");

        let mut a = Answer::new(3, false);
        let ack = raw(wire::NLMSG_ERROR, 0, 3, &0i32.to_ne_bytes());
        assert!(a.take("t", &ack).unwrap());

        let mut a = Answer::new(3, false);
        let e = a.take("t", &raw(RTM_NEWNEIGH, 0, 3, &[1])).unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }), "{e}");

        let mut a = Answer::new(3, true);
        let e = a
            .take("t", &raw(wire::NLMSG_DONE, 2, 3, &(-4i32).to_ne_bytes()))
            .unwrap_err();
        assert_eq!(e.errno(), Some(4));

        let mut a = Answer::new(3, true);
        assert!(a.take("t", &[1, 2, 3]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn answer_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                               dump: bool) {
            let mut a = Answer::new(0, dump);
            let _ = a.take("t", &bytes);
        }
    }
}
