//! LVS set-ups in namespaces: DR, NAT and TUN, IPv4 and IPv6 at once.
//!
//! ```text
//! DR / TUN (one L2 segment, a bridge in the switch namespace)
//!
//!   client eth0 ──┐
//!   director eth0 ┼── br0 (switch ns)
//!   rs1 eth0 ─────┤   rs: VIP on lo, arp_ignore=1, arp_announce=2
//!   rs2 eth0 ─────┘   (TUN: + the decap XDP program on eth0)
//!
//! DR / TUN with N directors and a router (high availability, scale-out)
//!
//!   client eth0 ── router eth0   router eth1 ──┐
//!                                director eth0 ┼── br0 (switch ns)
//!                                director2 eth0┤
//!                                rs1 eth0 ─────┘
//!   router: VIP/32 and VIP/128 over an ECMP group of every director
//!   client, directors, real servers: default routes via the router
//!
//! NAT (two arms)
//!
//!   client eth0 ── director eth0 (outside, holds the VIP)
//!                  director eth1 (inside) ── br0 (switch ns) ── rsN eth0
//!                  rs default route via the director's inside address
//!                  director default route via the client (its "router")
//! ```
//!
//! Addresses (`N` = real server index from 1, host octet `10 + 10 N`;
//! `K` = director index from 1, host octet `9 + K`):
//!
//! | role | DR / TUN | NAT |
//! |---|---|---|
//! | client eth0 | 192.0.2.1/24, 2001:db8::1/64 | 198.51.100.1/24, 2001:db8:1::1/64 |
//! | director eth0 | 192.0.2.10/24, 2001:db8::10/64 | 198.51.100.10/24, 2001:db8:1::10/64 |
//! | director K eth0 | 192.0.2.(9+K)/24, 2001:db8::(9+K)/64 | - |
//! | VIP (on director eth0) | 192.0.2.50, 2001:db8::50 | 198.51.100.50, 2001:db8:1::50 |
//! | director eth1 | - | 10.0.0.1/24, 2001:db8:2::1/64 |
//! | rsN eth0 | 192.0.2.(10+10N)/24, 2001:db8::(10+10N)/64 | 10.0.0.(10+10N)/24, 2001:db8:2::(10+10N)/64 |
//! | rsN lo | VIP /32 and /128 | - |
//!
//! With a router (DR / TUN only), the client moves behind it:
//!
//! | role | address |
//! |---|---|
//! | client eth0 | 198.51.100.1/24, 2001:db8:1::1/64 |
//! | router eth0 (client side) | 198.51.100.254/24, 2001:db8:1::254/64 |
//! | router eth1 (on the segment) | 192.0.2.254/24, 2001:db8::254/64 |
//!
//! MACs are fixed: `02:00:00:SS:RR:II` with segment `SS` (00 the DR/TUN
//! segment or NAT outside, 01 NAT inside, 02 the client-router link), role
//! `RR` (01 client, 02 director, 03 real server, 04 router) and index `II`
//! (hex; real server `N`, director `K - 1`, so the first director keeps
//! `02:00:00:00:02:00`).
//!
//! The director holds the VIP on its interface so that the kernel answers
//! ARP and ND for it; its forwarding stays off: moving VIP traffic is the
//! job of the userspace director (its XDP program takes the VIP's packets
//! before the kernel sees them). Clients and real servers have tx checksum
//! offload off (see [`Netns::tx_checksum_off`]).
//!
//! With several directors and no router only the first one gets the VIP
//! (the active one; `director_vip(false)` leaves it to keepalived, see
//! [`crate::keepalived`]). With a router, the router reaches the VIP
//! through the directors' own addresses, as after a BGP announcement: every
//! director holds the VIP on `lo` with arp_ignore/arp_announce like a real
//! server, so nobody answers ARP or ND for it on the segment, and
//! [`Topology::withdraw_director`] takes one out of the ECMP group the way
//! a BGP withdrawal does. The router hashes flows on their 5-tuple (both
//! families; see `router_hash_policy` for why that is policy 3 rather than
//! 1 on veth) over a resilient nexthop group ([`Ecmp`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;
use std::sync::Mutex;

use crate::echo::{EchoConfig, EchoServer};
use crate::error::{LabError, Result};
use crate::netns::{self, MacAddr, Netns, VethOptions, veth};

/// Most real servers a topology can have (host octets up to .250).
pub const MAX_REAL_SERVERS: usize = 24;

/// Most directors a topology can have (host octets .10 to .19).
pub const MAX_DIRECTORS: usize = 10;

/// Host octet of the router on both of its networks.
const ROUTER_HOST: u8 = 254;

/// Nexthop ids on the router: director `K` is `NH_V4 + K` / `NH_V6 + K`,
/// the groups `NH_GROUP_V4` / `NH_GROUP_V6`.
const NH_V4: u32 = 100;
const NH_V6: u32 = 200;
const NH_GROUP_V4: u32 = 1000;
const NH_GROUP_V6: u32 = 1001;

/// Buckets of the resilient nexthop groups.
const RESILIENT_BUCKETS: u32 = 128;

/// How the router spreads the VIP's flows over the directors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecmp {
    /// Nexthop objects in a resilient group (`ip nexthop add id G group
    /// A/B type resilient`, Linux 5.13+): flows hash to buckets, buckets to
    /// directors; taking a director out reassigns only its own buckets, so
    /// the other directors keep every flow they had.
    Resilient,
    /// A classic multipath route (`ip route replace VIP nexthop via A
    /// nexthop via B`), hash-threshold: the hash space is cut into one
    /// range per director, and taking one out shifts the ranges, which can
    /// move flows between the remaining directors (not with two).
    Multipath,
    /// No VIP route from the lab: BGP puts it there (BIRD on the router
    /// and the directors, see [`crate::bird`]), as a multipath route; a
    /// director withdraws itself with `birdc`.
    Bgp,
}

/// The LVS forwarding method a topology is wired for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Direct routing (`-g`): one segment, real servers hold the VIP on lo.
    Dr,
    /// Masquerading (`-m`): two arms, real servers route via the director.
    Nat,
    /// IP-in-IP tunnelling (`-i`): as DR, plus the decap XDP program on the
    /// real servers.
    Tun,
}

impl Mode {
    /// `dr`, `nat` or `tun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Nat => "nat",
            Mode::Tun => "tun",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "dr" | "g" | "route" => Ok(Mode::Dr),
            "nat" | "m" | "masq" => Ok(Mode::Nat),
            "tun" | "i" | "tunnel" | "ipip" => Ok(Mode::Tun),
            _ => Err(LabError::Invalid(format!(
                "unknown mode {s:?} (dr, nat, tun)"
            ))),
        }
    }
}

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both, IPv4 first.
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];
}

/// One configured interface of a host.
#[derive(Debug, Clone)]
pub struct Iface {
    /// Device name inside the host's namespace.
    pub dev: String,
    /// Its Ethernet address.
    pub mac: MacAddr,
    /// IPv4 address and prefix length.
    pub v4: (Ipv4Addr, u8),
    /// IPv6 address and prefix length.
    pub v6: (Ipv6Addr, u8),
}

impl Iface {
    /// The address of `family`.
    pub fn addr(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(self.v4.0),
            Family::V6 => IpAddr::V6(self.v6.0),
        }
    }
}

/// A host of the lab: its namespace and interfaces. Derefs to its
/// [`Netns`], so `host.http_get(..)` or `host.exec(..)` run inside it.
#[derive(Debug)]
pub struct Host {
    role: String,
    ns: Netns,
    ifaces: Vec<Iface>,
}

impl Host {
    /// `client`, `director`, `rs1`, `rs2`...
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// All interfaces (the director in NAT mode has eth0 then eth1).
    pub fn ifaces(&self) -> &[Iface] {
        &self.ifaces
    }

    /// The first interface (`eth0`).
    pub fn iface(&self) -> &Iface {
        &self.ifaces[0]
    }

    /// The first interface's address of `family`.
    pub fn addr(&self, family: Family) -> IpAddr {
        self.iface().addr(family)
    }

    /// The first interface's MAC.
    pub fn mac(&self) -> MacAddr {
        self.iface().mac
    }
}

impl Deref for Host {
    type Target = Netns;

    fn deref(&self) -> &Netns {
        &self.ns
    }
}

/// Builds a [`Topology`]; see [`Topology::builder`].
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    mode: Mode,
    real_servers: usize,
    queues: Option<u16>,
    checksum_offload: bool,
    decap: Option<bool>,
    director_vip: bool,
    directors: usize,
    router: bool,
    ecmp: Ecmp,
}

impl TopologyBuilder {
    /// Number of real servers (default 2, at most [`MAX_REAL_SERVERS`]).
    pub fn real_servers(mut self, n: usize) -> Self {
        self.real_servers = n;
        self
    }

    /// `numtxqueues/numrxqueues` of the director's veths, both ends (the
    /// userspace director binds one AF_XDP socket per queue). Default: the
    /// kernel's (1).
    pub fn queues(mut self, n: u16) -> Self {
        self.queues = Some(n);
        self
    }

    /// Keep tx checksum offload on the client and real servers (default
    /// off: partial checksums do not survive AF_XDP forwarding).
    pub fn checksum_offload(mut self, on: bool) -> Self {
        self.checksum_offload = on;
        self
    }

    /// Attach the decap XDP program to the real servers (default: in TUN
    /// mode only).
    pub fn decap(mut self, on: bool) -> Self {
        self.decap = Some(on);
        self
    }

    /// Give the director the VIP on its interface (default true). Without
    /// it nobody answers ARP/ND for the VIP: used to show that the real
    /// servers do not.
    pub fn director_vip(mut self, on: bool) -> Self {
        self.director_vip = on;
        self
    }

    /// Number of directors on the segment (default 1, at most
    /// [`MAX_DIRECTORS`]; DR and TUN only). The first is
    /// [`Topology::director`]; all are [`Topology::directors`].
    pub fn directors(mut self, n: usize) -> Self {
        self.directors = n;
        self
    }

    /// Put a router between the client and the segment (default off; DR
    /// and TUN only): the client moves to its own network behind the
    /// router, which reaches the VIP over an ECMP group of every director.
    pub fn router(mut self, on: bool) -> Self {
        self.router = on;
        self
    }

    /// How the router spreads flows (default [`Ecmp::Resilient`], or
    /// [`Ecmp::Multipath`] where the kernel has no nexthop objects; see
    /// [`Topology::ecmp`]).
    pub fn ecmp(mut self, kind: Ecmp) -> Self {
        self.ecmp = kind;
        self
    }

    /// Creates the namespaces and wires them. On error everything created
    /// so far is removed.
    pub fn build(self) -> Result<Topology> {
        if self.real_servers == 0 || self.real_servers > MAX_REAL_SERVERS {
            return Err(LabError::Invalid(format!(
                "{} real servers (1..={MAX_REAL_SERVERS})",
                self.real_servers
            )));
        }
        if self.directors == 0 || self.directors > MAX_DIRECTORS {
            return Err(LabError::Invalid(format!(
                "{} directors (1..={MAX_DIRECTORS})",
                self.directors
            )));
        }
        if self.mode == Mode::Nat && (self.directors > 1 || self.router) {
            return Err(LabError::Invalid(
                "several directors and the router need the one-segment DR or TUN topology".into(),
            ));
        }
        netns::require_root()?;
        if let Err(e) = netns::cleanup_stale() {
            eprintln!("xvs-lab: removing stale namespaces: {e}");
        }
        match self.mode {
            Mode::Dr | Mode::Tun => self.build_one_arm(),
            Mode::Nat => self.build_nat(),
        }
    }

    fn role(&self, what: &str) -> String {
        format!("{}-{what}", self.mode)
    }

    fn build_one_arm(self) -> Result<Topology> {
        let plan = Plan::one_arm();
        let mut lab = self.skeleton(&plan)?;
        // The client: on the segment, or behind the router.
        match lab.router.as_mut() {
            None => wire(
                &lab.switch,
                &mut lab.client,
                "cli",
                plan.client.clone(),
                None,
            )?,
            Some(router) => {
                let (cli, out) = (Plan::routed_client(), Plan::router_outside());
                veth(
                    &lab.client.ns,
                    &cli.dev,
                    &router.ns,
                    &out.dev,
                    &VethOptions {
                        mac_a: Some(cli.mac),
                        mac_b: Some(out.mac),
                        ..VethOptions::default()
                    },
                )?;
                lab.client.ifaces.push(cli);
                router.ifaces.push(out);
                wire(&lab.switch, router, "rtr", Plan::router_inside(), None)?;
            }
        }
        // Every other host on the bridge.
        for (k, d) in lab.directors.iter_mut().enumerate() {
            let port = director_port(k);
            wire(&lab.switch, d, &port, plan.director_n(k + 1), self.queues)?;
        }
        for (i, rs) in lab.real_servers.iter_mut().enumerate() {
            let port = rs.role.clone();
            wire(&lab.switch, rs, &port, plan.real_server(i + 1), None)?;
        }
        // Addresses and per-role settings.
        let vip4 = IpAddr::V4(plan.vip4);
        let vip6 = IpAddr::V6(plan.vip6);
        configure_iface(&lab.client, &lab.client.ifaces[0])?;
        for (k, d) in lab.directors.iter().enumerate() {
            configure_iface(d, &d.ifaces[0])?;
            if lab.router.is_some() {
                // Reached through the router's routes, as after a BGP
                // announcement: the VIP is local but never claimed on the
                // segment.
                if self.director_vip {
                    d.add_loopback_vip(vip4)?;
                    d.add_loopback_vip(vip6)?;
                }
                d.hide_arp("eth0")?;
            } else if self.director_vip && k == 0 {
                d.add_addr("eth0", vip4, 32)?;
                d.add_addr("eth0", vip6, 128)?;
            }
            d.ip_forward(false)?;
        }
        for rs in &lab.real_servers {
            configure_iface(rs, &rs.ifaces[0])?;
            rs.add_loopback_vip(vip4)?;
            rs.add_loopback_vip(vip6)?;
            rs.hide_arp("eth0")?;
        }
        if let Some(router) = &lab.router {
            for ifc in &router.ifaces {
                configure_iface(router, ifc)?;
            }
            router.ip_forward(true)?;
            router_hash_policy(router)?;
            let outside = &router.ifaces[0];
            let inside = &router.ifaces[1];
            for f in Family::ALL {
                lab.client.add_route("default", outside.addr(f))?;
                for h in lab.directors.iter().chain(&lab.real_servers) {
                    h.add_route("default", inside.addr(f))?;
                }
            }
            let members: Vec<usize> = match self.ecmp {
                Ecmp::Bgp => Vec::new(),
                _ => (0..lab.directors.len()).collect(),
            };
            let kind = match lab.program_ecmp(self.ecmp, &members) {
                Err(e) if e.is_unsupported() && self.ecmp == Ecmp::Resilient => {
                    eprintln!(
                        "xvs-lab: no resilient nexthop groups here ({e}); using a multipath route"
                    );
                    lab.program_ecmp(Ecmp::Multipath, &members)?;
                    Ecmp::Multipath
                }
                other => {
                    other?;
                    self.ecmp
                }
            };
            lab.ecmp = Some(EcmpState {
                kind,
                members: Mutex::new(members),
            });
        }
        self.finish(&lab)?;
        Ok(lab)
    }

    fn build_nat(self) -> Result<Topology> {
        let plan = Plan::nat();
        let mut lab = self.skeleton(&plan)?;
        // Outside: a direct veth client <-> director.
        let (cli, out) = (plan.client.clone(), plan.director.clone());
        veth(
            &lab.client.ns,
            &cli.dev,
            &lab.directors[0].ns,
            &out.dev,
            &VethOptions {
                queues: self.queues,
                mac_a: Some(cli.mac),
                mac_b: Some(out.mac),
                ..VethOptions::default()
            },
        )?;
        lab.client.ifaces.push(cli);
        lab.directors[0].ifaces.push(out);
        // Inside: director eth1 and the real servers on the bridge.
        let inside = plan
            .director_inside
            .clone()
            .unwrap_or_else(|| plan.director.clone());
        wire(
            &lab.switch,
            &mut lab.directors[0],
            "dir",
            inside,
            self.queues,
        )?;
        for (i, rs) in lab.real_servers.iter_mut().enumerate() {
            let port = rs.role.clone();
            wire(&lab.switch, rs, &port, plan.real_server(i + 1), None)?;
        }
        configure_iface(&lab.client, &lab.client.ifaces[0])?;
        configure_iface(&lab.directors[0], &lab.directors[0].ifaces[0])?;
        configure_iface(&lab.directors[0], &lab.directors[0].ifaces[1])?;
        if self.director_vip {
            lab.directors[0].add_addr("eth0", IpAddr::V4(plan.vip4), 32)?;
            lab.directors[0].add_addr("eth0", IpAddr::V6(plan.vip6), 128)?;
        }
        lab.directors[0].ip_forward(false)?;
        // The client stands for the clients' router: the director's default
        // routes point at it, so NAT replies leave through a gateway as on
        // a real director.
        let cli = &lab.client.ifaces[0];
        lab.directors[0].add_route("default", cli.addr(Family::V4))?;
        lab.directors[0].add_route("default", cli.addr(Family::V6))?;
        let gw = &lab.directors[0].ifaces[1];
        let (gw4, gw6) = (gw.addr(Family::V4), gw.addr(Family::V6));
        for rs in &lab.real_servers {
            configure_iface(rs, &rs.ifaces[0])?;
            rs.add_route("default", gw4)?;
            rs.add_route("default", gw6)?;
        }
        self.finish(&lab)?;
        Ok(lab)
    }

    /// The namespaces, without links: switch (with `br0`), client,
    /// router (if any), directors, real servers.
    fn skeleton(&self, plan: &Plan) -> Result<Topology> {
        let id = netns::next_id();
        let switch = Netns::with_id(&self.role("sw"), id)?;
        switch.add_bridge("br0")?;
        let client = self.host(id, "client", "cli")?;
        let router = if self.router {
            Some(self.host(id, "router", "rtr")?)
        } else {
            None
        };
        let mut directors = Vec::with_capacity(self.directors);
        for k in 1..=self.directors {
            directors.push(if k == 1 {
                self.host(id, "director", "dir")?
            } else {
                self.host(id, &format!("director{k}"), &format!("dir{k}"))?
            });
        }
        let mut real_servers = Vec::with_capacity(self.real_servers);
        for n in 1..=self.real_servers {
            real_servers.push(self.host(id, &format!("rs{n}"), &format!("rs{n}"))?);
        }
        Ok(Topology {
            mode: self.mode,
            vip: (plan.vip4, plan.vip6),
            client,
            directors,
            real_servers,
            router,
            ecmp: None,
            switch,
        })
    }

    fn host(&self, id: u32, role: &str, short: &str) -> Result<Host> {
        let ns = Netns::with_id(&self.role(short), id)?;
        // Before any link exists, so every interface inherits them.
        ns.sysctl(&[
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.accept_ra", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ])?;
        Ok(Host {
            role: role.to_owned(),
            ns,
            ifaces: Vec::new(),
        })
    }

    fn finish(&self, lab: &Topology) -> Result<()> {
        let decap = self.decap.unwrap_or(self.mode == Mode::Tun);
        if !self.checksum_offload {
            lab.client.tx_checksum_off("eth0")?;
            for rs in &lab.real_servers {
                rs.tx_checksum_off("eth0")?;
            }
        }
        for rs in &lab.real_servers {
            rs.rp_filter("eth0", 0)?;
            if decap {
                rs.attach_decap("eth0")?;
            }
        }
        Ok(())
    }
}

/// The router hashes flows by their 5-tuple (source and destination
/// address, protocol, ports), as a router hashing on L4 does with packets
/// from a wire.
///
/// `fib_multipath_hash_policy=1` (L4) is not that on veth: a TCP socket
/// stamps its packets with a random per-socket hash (`sk_txhash`), veth
/// hands the same skb to the next namespace with that hash still set, and
/// policy 1 takes a hash it finds instead of computing one. The router
/// would then pick a director from the client's random number (which TCP
/// re-draws after a retransmission timeout, moving the flow) rather than
/// from the headers. Policy 3 (custom, Linux 5.12+) always dissects the
/// packet; fields `0x37` are the 5-tuple (IPv6: without the flow label).
/// Kernels without it get policy 1.
fn router_hash_policy(router: &Host) -> Result<()> {
    let custom = router.sysctl(&[
        ("net.ipv4.fib_multipath_hash_fields", "0x0037"),
        ("net.ipv4.fib_multipath_hash_policy", "3"),
        ("net.ipv6.fib_multipath_hash_fields", "0x0037"),
        ("net.ipv6.fib_multipath_hash_policy", "3"),
    ]);
    if let Err(e) = custom {
        eprintln!("xvs-lab: no custom multipath hash here ({e}); using policy 1 (L4)");
        router.sysctl(&[
            ("net.ipv4.fib_multipath_hash_policy", "1"),
            ("net.ipv6.fib_multipath_hash_policy", "1"),
        ])?;
    }
    Ok(())
}

/// The bridge port of director `k` (from 0) in the switch namespace.
fn director_port(k: usize) -> String {
    if k == 0 {
        "dir".to_owned()
    } else {
        format!("dir{}", k + 1)
    }
}

/// A veth from `host` (`iface.dev`, `iface.mac`) to a port of `br0` in
/// `switch`.
fn wire(
    switch: &Netns,
    host: &mut Host,
    port: &str,
    iface: Iface,
    queues: Option<u16>,
) -> Result<()> {
    let opts = VethOptions {
        queues,
        mac_a: Some(iface.mac),
        ..VethOptions::default()
    };
    veth(&host.ns, &iface.dev, switch, port, &opts)?;
    switch.bridge_port("br0", port)?;
    host.ifaces.push(iface);
    Ok(())
}

fn configure_iface(host: &Host, iface: &Iface) -> Result<()> {
    host.add_addr(&iface.dev, IpAddr::V4(iface.v4.0), iface.v4.1)?;
    host.add_addr(&iface.dev, IpAddr::V6(iface.v6.0), iface.v6.1)
}

/// The addresses of one topology kind.
struct Plan {
    client: Iface,
    director: Iface,
    director_inside: Option<Iface>,
    vip4: Ipv4Addr,
    vip6: Ipv6Addr,
    /// Real servers' network: (v4 /24 base, v6 /64 prefix, segment byte).
    rs_net: ([u8; 3], &'static str, u8),
}

fn v6(prefix: &str, host: u32) -> Ipv6Addr {
    // The host part is written with the IPv4 octet's decimal digits, so
    // 192.0.2.20 pairs with 2001:db8::20.
    format!("{prefix}{host}")
        .parse()
        .unwrap_or(Ipv6Addr::UNSPECIFIED)
}

fn mac(segment: u8, role: u8, index: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, segment, role, index])
}

fn iface(dev: &str, net4: [u8; 3], net6: &str, host: u8, mac: MacAddr) -> Iface {
    Iface {
        dev: dev.to_owned(),
        mac,
        v4: (Ipv4Addr::new(net4[0], net4[1], net4[2], host), 24),
        v6: (v6(net6, u32::from(host)), 64),
    }
}

impl Plan {
    fn one_arm() -> Self {
        let (n4, n6) = ([192, 0, 2], "2001:db8::");
        Plan {
            client: iface("eth0", n4, n6, 1, mac(0, 1, 0)),
            director: iface("eth0", n4, n6, 10, mac(0, 2, 0)),
            director_inside: None,
            vip4: Ipv4Addr::new(192, 0, 2, 50),
            vip6: v6(n6, 50),
            rs_net: (n4, n6, 0),
        }
    }

    fn nat() -> Self {
        let (o4, o6) = ([198, 51, 100], "2001:db8:1::");
        Plan {
            client: iface("eth0", o4, o6, 1, mac(0, 1, 0)),
            director: iface("eth0", o4, o6, 10, mac(0, 2, 0)),
            director_inside: Some(iface("eth1", [10, 0, 0], "2001:db8:2::", 1, mac(1, 2, 0))),
            vip4: Ipv4Addr::new(198, 51, 100, 50),
            vip6: v6(o6, 50),
            rs_net: ([10, 0, 0], "2001:db8:2::", 1),
        }
    }

    fn real_server(&self, n: usize) -> Iface {
        let (n4, n6, seg) = self.rs_net;
        let idx = n as u8;
        iface("eth0", n4, n6, 10 + 10 * idx, mac(seg, 3, idx))
    }

    /// Director `k` (from 1) of the one-arm segment: host octet `9 + k`,
    /// MAC index `k - 1` (the first one is [`Plan::director`]).
    fn director_n(&self, k: usize) -> Iface {
        let mut d = self.director.clone();
        if k > 1 {
            let (n4, n6, seg) = self.rs_net;
            let idx = (k - 1) as u8;
            d = iface("eth0", n4, n6, 9 + k as u8, mac(seg, 2, idx));
        }
        d
    }

    /// The client behind the router.
    fn routed_client() -> Iface {
        iface("eth0", [198, 51, 100], "2001:db8:1::", 1, mac(2, 1, 0))
    }

    /// The router's interface toward the client.
    fn router_outside() -> Iface {
        iface(
            "eth0",
            [198, 51, 100],
            "2001:db8:1::",
            ROUTER_HOST,
            mac(2, 4, 0),
        )
    }

    /// The router's interface on the segment.
    fn router_inside() -> Iface {
        iface("eth1", [192, 0, 2], "2001:db8::", ROUTER_HOST, mac(0, 4, 0))
    }
}

/// The router's ECMP group: how it is built and which directors are in it.
#[derive(Debug)]
struct EcmpState {
    kind: Ecmp,
    /// Director indices (from 0) currently announced, ascending.
    members: Mutex<Vec<usize>>,
}

/// A built LVS lab; dropping it deletes every namespace (also while a
/// failing test unwinds).
#[derive(Debug)]
pub struct Topology {
    mode: Mode,
    vip: (Ipv4Addr, Ipv6Addr),
    client: Host,
    directors: Vec<Host>,
    real_servers: Vec<Host>,
    router: Option<Host>,
    ecmp: Option<EcmpState>,
    switch: Netns,
}

impl Topology {
    /// A builder for `mode` with 2 real servers.
    ///
    /// ```no_run
    /// use xvs_lab::{Family, Mode, Topology};
    /// let lab = Topology::builder(Mode::Dr).real_servers(2).build()?;
    /// let _servers = lab.start_echo(80, 53)?;
    /// // ... start xvsd in lab.director() ...
    /// let answer = lab.client().http_get(lab.vip_addr(Family::V4, 80), "/")?;
    /// println!("{}", answer.text()); // "rs1\n" or "rs2\n"
    /// # Ok::<(), xvs_lab::LabError>(())
    /// ```
    pub fn builder(mode: Mode) -> TopologyBuilder {
        TopologyBuilder {
            mode,
            real_servers: 2,
            queues: None,
            checksum_offload: false,
            decap: None,
            director_vip: true,
            directors: 1,
            router: false,
            ecmp: Ecmp::Resilient,
        }
    }

    /// The forwarding method it is wired for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The client host.
    pub fn client(&self) -> &Host {
        &self.client
    }

    /// The (first) director host (where `xvsd` runs).
    pub fn director(&self) -> &Host {
        &self.directors[0]
    }

    /// Every director, the first one first (see
    /// [`TopologyBuilder::directors`]).
    pub fn directors(&self) -> &[Host] {
        &self.directors
    }

    /// The router between the client and the segment, if built with
    /// [`TopologyBuilder::router`].
    pub fn router(&self) -> Option<&Host> {
        self.router.as_ref()
    }

    /// How the router spreads flows over the directors (`None` without a
    /// router): the kind asked for, or [`Ecmp::Multipath`] when this
    /// kernel has no resilient nexthop groups.
    pub fn ecmp(&self) -> Option<Ecmp> {
        self.ecmp.as_ref().map(|e| e.kind)
    }

    /// The directors (indices from 0) the lab currently routes VIP traffic
    /// to (none with [`Ecmp::Bgp`], where BGP decides).
    pub fn ecmp_members(&self) -> Vec<usize> {
        self.ecmp
            .as_ref()
            .map(|e| lock(&e.members).clone())
            .unwrap_or_default()
    }

    /// Takes director `k` (from 0) out of the router's ECMP group for both
    /// VIPs, as a BGP withdrawal (or a routing daemon seeing its session
    /// go down) would: new packets of its flows go to the other directors
    /// at once. With [`Ecmp::Resilient`] only its own flows move. The last
    /// director cannot be withdrawn.
    pub fn withdraw_director(&self, k: usize) -> Result<()> {
        self.set_member(k, false)
    }

    /// Puts director `k` back into the ECMP group (a new announcement).
    /// With [`Ecmp::Resilient`] the group's buckets move back to it only as
    /// they go idle (the kernel's default idle timer, 120 s), so
    /// established flows stay where they are for that long.
    pub fn announce_director(&self, k: usize) -> Result<()> {
        self.set_member(k, true)
    }

    /// The director (index from 0) the router picks for an IPv4 TCP flow
    /// from the client's `client_port` to `VIP:vport`: the route lookup its
    /// forwarding makes for that flow (`ip route get VIP from CLIENT iif
    /// eth0 ipproto tcp sport .. dport ..`).
    ///
    /// IPv4 only: for IPv6 `ip route get` hashes a flow description,
    /// while forwarding hashes the packet and (policy 3) mixes in an inner
    /// header hash, so the two disagree; IPv6 flows are placed by watching
    /// where they land instead.
    pub fn ecmp_route(&self, client_port: u16, vport: u16) -> Result<usize> {
        let router = self.need_router()?;
        let vip = self.vip(Family::V4).to_string();
        let from = self.client.addr(Family::V4).to_string();
        let (sport, dport) = (client_port.to_string(), vport.to_string());
        let out = router.ip(&[
            "-4", "route", "get", &vip, "from", &from, "iif", "eth0", "ipproto", "tcp", "sport",
            &sport, "dport", &dport,
        ])?;
        let via = out
            .split_whitespace()
            .skip_while(|w| *w != "via")
            .nth(1)
            .and_then(|a| a.parse::<IpAddr>().ok())
            .ok_or_else(|| LabError::Protocol(format!("no gateway in {out:?}")))?;
        self.directors
            .iter()
            .position(|d| d.addr(Family::V4) == via)
            .ok_or_else(|| LabError::Protocol(format!("{via} is not a director ({out:?})")))
    }

    /// Cuts director `k` (from 0) off the segment: its bridge port goes
    /// down, so its interface loses carrier. Seen from the network this is
    /// a director that died (power loss, kernel panic, cable pulled): it
    /// sends nothing more, answers no ARP, and its processes never learn
    /// the VIP is gone. [`Topology::plug_director`] undoes it.
    pub fn unplug_director(&self, k: usize) -> Result<()> {
        self.director_port_state(k, "down")
    }

    /// Puts director `k`'s bridge port back up.
    pub fn plug_director(&self, k: usize) -> Result<()> {
        self.director_port_state(k, "up")
    }

    fn director_port_state(&self, k: usize, state: &str) -> Result<()> {
        if k >= self.directors.len() || self.mode == Mode::Nat {
            return Err(LabError::Invalid(format!(
                "no director {k} on the segment of this {} lab",
                self.mode
            )));
        }
        self.switch
            .ip(&["link", "set", &director_port(k), state])
            .map(drop)
    }

    fn need_router(&self) -> Result<&Host> {
        self.router.as_ref().ok_or_else(|| {
            LabError::Invalid("this lab has no router (builder.router(true))".into())
        })
    }

    fn set_member(&self, k: usize, on: bool) -> Result<()> {
        let ecmp = self.ecmp.as_ref().ok_or_else(|| {
            LabError::Invalid("this lab has no router (builder.router(true))".into())
        })?;
        if ecmp.kind == Ecmp::Bgp {
            return Err(LabError::Invalid(
                "BGP routes this lab: a director withdraws itself (birdc disable)".into(),
            ));
        }
        if k >= self.directors.len() {
            return Err(LabError::Invalid(format!(
                "director {k} of {}",
                self.directors.len()
            )));
        }
        let mut members = lock(&ecmp.members);
        let mut next = members.clone();
        next.retain(|m| *m != k);
        if on {
            next.push(k);
            next.sort_unstable();
        }
        if next.is_empty() {
            return Err(LabError::Invalid(
                "the last director of the ECMP group cannot be withdrawn".into(),
            ));
        }
        if next != *members {
            self.program_ecmp(ecmp.kind, &next)?;
            *members = next;
        }
        Ok(())
    }

    /// Points the router's VIP routes at directors `members` (indices).
    fn program_ecmp(&self, kind: Ecmp, members: &[usize]) -> Result<()> {
        let router = self.need_router()?;
        if kind == Ecmp::Bgp {
            return Ok(());
        }
        for family in Family::ALL {
            let (fam, vip, base, group) = match family {
                Family::V4 => ("-4", format!("{}/32", self.vip.0), NH_V4, NH_GROUP_V4),
                Family::V6 => ("-6", format!("{}/128", self.vip.1), NH_V6, NH_GROUP_V6),
            };
            let gw = |k: usize| self.directors[k].addr(family).to_string();
            match kind {
                Ecmp::Resilient => {
                    // Every director's nexthop exists once; the group lists
                    // the members. Replacing the group keeps the buckets of
                    // the directors that stay.
                    for (k, _) in self.directors.iter().enumerate() {
                        let id = (base + 1 + k as u32).to_string();
                        if router.ip(&["nexthop", "get", "id", &id]).is_err() {
                            router.ip(&[
                                "nexthop",
                                "add",
                                "id",
                                &id,
                                "via",
                                &gw(k),
                                "dev",
                                "eth1",
                            ])?;
                        }
                    }
                    let list = members
                        .iter()
                        .map(|k| (base + 1 + *k as u32).to_string())
                        .collect::<Vec<_>>()
                        .join("/");
                    let (group, buckets) = (group.to_string(), RESILIENT_BUCKETS.to_string());
                    router.ip(&[
                        "nexthop",
                        "replace",
                        "id",
                        &group,
                        "group",
                        &list,
                        "type",
                        "resilient",
                        "buckets",
                        &buckets,
                    ])?;
                    router.ip(&[fam, "route", "replace", &vip, "nhid", &group])?;
                }
                Ecmp::Bgp => {}
                Ecmp::Multipath => {
                    let mut args: Vec<String> =
                        vec![fam.into(), "route".into(), "replace".into(), vip.clone()];
                    if let [only] = members {
                        args.extend(["via".into(), gw(*only), "dev".into(), "eth1".into()]);
                    } else {
                        for k in members {
                            args.extend([
                                "nexthop".into(),
                                "via".into(),
                                gw(*k),
                                "dev".into(),
                                "eth1".into(),
                            ]);
                        }
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    router.ip(&args)?;
                }
            }
        }
        Ok(())
    }

    /// The real servers, `rs1` first.
    pub fn real_servers(&self) -> &[Host] {
        &self.real_servers
    }

    /// The namespace holding the bridge `br0`.
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// The VIP of `family`.
    pub fn vip(&self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::V4(self.vip.0),
            Family::V6 => IpAddr::V6(self.vip.1),
        }
    }

    /// `VIP:port`.
    pub fn vip_addr(&self, family: Family, port: u16) -> SocketAddr {
        SocketAddr::new(self.vip(family), port)
    }

    /// The director's interface facing the client (`eth0`).
    pub fn director_outside(&self) -> &Iface {
        &self.director().ifaces[0]
    }

    /// The director's interface facing the real servers (`eth1` in NAT,
    /// `eth0` otherwise).
    pub fn director_inside(&self) -> &Iface {
        let d = self.director();
        d.ifaces.last().unwrap_or(&d.ifaces[0])
    }

    /// Starts an in-process echo server ([`EchoServer`]) on every real
    /// server, named after it (`rs1`...), on TCP `tcp_port` and UDP
    /// `udp_port` of all its addresses (VIP included); port 0 skips one.
    pub fn start_echo(&self, tcp_port: u16, udp_port: u16) -> Result<Vec<EchoServer>> {
        self.real_servers
            .iter()
            .map(|rs| EchoServer::start_in(rs, &EchoConfig::wildcard(&rs.role, tcp_port, udp_port)))
            .collect()
    }

    /// Baseline 1 (NAT only): the director's kernel routes. IPv4/IPv6
    /// forwarding on, and the client gets routes to the inside networks via
    /// the director, so it can reach real servers by their own addresses.
    pub fn enable_kernel_forwarding(&self) -> Result<()> {
        self.need_nat("kernel forwarding")?;
        self.director().ip_forward(true)?;
        let inside = self.director_inside();
        let out = self.director_outside();
        let net4 = Ipv4Addr::from(u32::from(inside.v4.0) & !0xff);
        let net6 = Ipv6Addr::from(u128::from(inside.v6.0) & !((1u128 << 64) - 1));
        self.client
            .add_route(&format!("{net4}/24"), out.addr(Family::V4))?;
        self.client
            .add_route(&format!("{net6}/64"), out.addr(Family::V6))
    }

    /// Baseline 2 (NAT only): nftables DNAT in the director, round robin
    /// over the real servers (`numgen inc`), TCP and UDP to `VIP:port` for
    /// each of `ports` (ports unchanged), IPv4 and IPv6, forwarding on.
    /// Replaces an earlier ruleset of the lab.
    pub fn enable_nft_dnat(&self, ports: &[u16]) -> Result<()> {
        self.need_nat("nftables DNAT")?;
        if ports.is_empty() {
            return Err(LabError::Invalid("nftables DNAT without ports".into()));
        }
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        self.director().ip_forward(true)?;
        let n = self.real_servers.len();
        let map = |family: Family| -> String {
            self.real_servers
                .iter()
                .enumerate()
                .map(|(i, rs)| format!("{i} : {}", rs.addr(family)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rules = format!(
            "table inet xvs_lab\n\
             delete table inet xvs_lab\n\
             table inet xvs_lab {{\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tip daddr {vip4} meta l4proto {{ tcp, udp }} th dport {{ {ports} }} dnat ip to numgen inc mod {n} map {{ {m4} }}\n\
             \t\tip6 daddr {vip6} meta l4proto {{ tcp, udp }} th dport {{ {ports} }} dnat ip6 to numgen inc mod {n} map {{ {m6} }}\n\
             \t}}\n\
             }}\n",
            vip4 = self.vip.0,
            vip6 = self.vip.1,
            m4 = map(Family::V4),
            m6 = map(Family::V6),
        );
        self.director().nft(&rules)
    }

    /// Undoes the baselines: forwarding off, the lab's nftables table and
    /// the client's inside routes removed, so that the userspace director
    /// can be measured next in the same lab.
    pub fn disable_kernel_director(&self) -> Result<()> {
        self.director().ip_forward(false)?;
        let _ = self
            .director()
            .nft("table inet xvs_lab\ndelete table inet xvs_lab\n");
        if self.mode == Mode::Nat {
            let inside = self.director_inside();
            let net4 = Ipv4Addr::from(u32::from(inside.v4.0) & !0xff);
            let net6 = Ipv6Addr::from(u128::from(inside.v6.0) & !((1u128 << 64) - 1));
            let _ = self
                .client
                .ip(&["-4", "route", "del", &format!("{net4}/24")]);
            let _ = self
                .client
                .ip(&["-6", "route", "del", &format!("{net6}/64")]);
        }
        Ok(())
    }

    fn need_nat(&self, what: &str) -> Result<()> {
        if self.mode == Mode::Nat {
            Ok(())
        } else {
            Err(LabError::Invalid(format!(
                "{what} needs the NAT topology (two arms), this is {}",
                self.mode
            )))
        }
    }

    /// `KEY=value` lines describing the lab, for shell scripts (namespace
    /// names, devices, addresses, MACs).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("XVS_MODE".to_owned(), self.mode.to_string()),
            ("XVS_VIP4".into(), self.vip.0.to_string()),
            ("XVS_VIP6".into(), self.vip.1.to_string()),
            ("XVS_SWITCH_NS".into(), self.switch.name().to_owned()),
            ("XVS_RS_COUNT".into(), self.real_servers.len().to_string()),
            (
                "XVS_DIRECTOR_COUNT".into(),
                self.directors.len().to_string(),
            ),
        ];
        let mut host = |prefix: &str, h: &Host| {
            v.push((format!("{prefix}_NS"), h.name().to_owned()));
            for (i, ifc) in h.ifaces.iter().enumerate() {
                let p = if i == 0 {
                    prefix.to_owned()
                } else {
                    format!("{prefix}_INSIDE")
                };
                v.push((format!("{p}_IF"), ifc.dev.clone()));
                v.push((format!("{p}_MAC"), ifc.mac.to_string()));
                v.push((format!("{p}_IP4"), ifc.v4.0.to_string()));
                v.push((format!("{p}_IP6"), ifc.v6.0.to_string()));
            }
        };
        host("XVS_CLIENT", &self.client);
        for (k, d) in self.directors.iter().enumerate() {
            if k == 0 {
                host("XVS_DIRECTOR", d);
            } else {
                host(&format!("XVS_DIRECTOR{}", k + 1), d);
            }
        }
        if let Some(r) = &self.router {
            host("XVS_ROUTER", r);
        }
        for (i, rs) in self.real_servers.iter().enumerate() {
            host(&format!("XVS_RS{}", i + 1), rs);
        }
        if let Some(kind) = self.ecmp() {
            let kind = match kind {
                Ecmp::Resilient => "resilient",
                Ecmp::Multipath => "multipath",
                Ecmp::Bgp => "bgp",
            };
            v.push(("XVS_ECMP".into(), kind.into()));
        }
        v
    }
}

/// Locks a mutex, also one a panicking thread left poisoned (the data is a
/// list of indices, always consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
