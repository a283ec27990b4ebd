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
//! NAT (two arms)
//!
//!   client eth0 ── director eth0 (outside, holds the VIP)
//!                  director eth1 (inside) ── br0 (switch ns) ── rsN eth0
//!                  rs default route via the director's inside address
//!                  director default route via the client (its "router")
//! ```
//!
//! Addresses (`N` = real server index from 1, host octet `10 + 10 N`):
//!
//! | role | DR / TUN | NAT |
//! |---|---|---|
//! | client eth0 | 192.0.2.1/24, 2001:db8::1/64 | 198.51.100.1/24, 2001:db8:1::1/64 |
//! | director eth0 | 192.0.2.10/24, 2001:db8::10/64 | 198.51.100.10/24, 2001:db8:1::10/64 |
//! | VIP (on director eth0) | 192.0.2.50, 2001:db8::50 | 198.51.100.50, 2001:db8:1::50 |
//! | director eth1 | - | 10.0.0.1/24, 2001:db8:2::1/64 |
//! | rsN eth0 | 192.0.2.(10+10N)/24, 2001:db8::(10+10N)/64 | 10.0.0.(10+10N)/24, 2001:db8:2::(10+10N)/64 |
//! | rsN lo | VIP /32 and /128 | - |
//!
//! MACs are fixed: `02:00:00:SS:RR:II` with segment `SS` (00 the DR/TUN
//! segment or NAT outside, 01 NAT inside), role `RR` (01 client, 02
//! director, 03 real server) and real server index `II` (hex).
//!
//! The director holds the VIP on its interface so that the kernel answers
//! ARP and ND for it; its forwarding stays off: moving VIP traffic is the
//! job of the userspace director (its XDP program takes the VIP's packets
//! before the kernel sees them). Clients and real servers have tx checksum
//! offload off (see [`Netns::tx_checksum_off`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;

use crate::echo::{EchoConfig, EchoServer};
use crate::error::{LabError, Result};
use crate::netns::{self, MacAddr, Netns, VethOptions, veth};

/// Most real servers a topology can have (host octets up to .250).
pub const MAX_REAL_SERVERS: usize = 24;

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

    /// Creates the namespaces and wires them. On error everything created
    /// so far is removed.
    pub fn build(self) -> Result<Topology> {
        if self.real_servers == 0 || self.real_servers > MAX_REAL_SERVERS {
            return Err(LabError::Invalid(format!(
                "{} real servers (1..={MAX_REAL_SERVERS})",
                self.real_servers
            )));
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
        // Wire every host to the bridge.
        wire(
            &lab.switch,
            &mut lab.client,
            "cli",
            plan.client.clone(),
            None,
        )?;
        wire(
            &lab.switch,
            &mut lab.director,
            "dir",
            plan.director.clone(),
            self.queues,
        )?;
        for (i, rs) in lab.real_servers.iter_mut().enumerate() {
            let port = rs.role.clone();
            wire(&lab.switch, rs, &port, plan.real_server(i + 1), None)?;
        }
        // Addresses and per-role settings.
        let vip4 = IpAddr::V4(plan.vip4);
        let vip6 = IpAddr::V6(plan.vip6);
        configure_iface(&lab.client, &lab.client.ifaces[0])?;
        configure_iface(&lab.director, &lab.director.ifaces[0])?;
        if self.director_vip {
            lab.director.add_addr("eth0", vip4, 32)?;
            lab.director.add_addr("eth0", vip6, 128)?;
        }
        lab.director.ip_forward(false)?;
        for rs in &lab.real_servers {
            configure_iface(rs, &rs.ifaces[0])?;
            rs.add_loopback_vip(vip4)?;
            rs.add_loopback_vip(vip6)?;
            rs.hide_arp("eth0")?;
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
            &lab.director.ns,
            &out.dev,
            &VethOptions {
                queues: self.queues,
                mac_a: Some(cli.mac),
                mac_b: Some(out.mac),
                ..VethOptions::default()
            },
        )?;
        lab.client.ifaces.push(cli);
        lab.director.ifaces.push(out);
        // Inside: director eth1 and the real servers on the bridge.
        let inside = plan
            .director_inside
            .clone()
            .unwrap_or_else(|| plan.director.clone());
        wire(&lab.switch, &mut lab.director, "dir", inside, self.queues)?;
        for (i, rs) in lab.real_servers.iter_mut().enumerate() {
            let port = rs.role.clone();
            wire(&lab.switch, rs, &port, plan.real_server(i + 1), None)?;
        }
        configure_iface(&lab.client, &lab.client.ifaces[0])?;
        configure_iface(&lab.director, &lab.director.ifaces[0])?;
        configure_iface(&lab.director, &lab.director.ifaces[1])?;
        if self.director_vip {
            lab.director.add_addr("eth0", IpAddr::V4(plan.vip4), 32)?;
            lab.director.add_addr("eth0", IpAddr::V6(plan.vip6), 128)?;
        }
        lab.director.ip_forward(false)?;
        // The client stands for the clients' router: the director's default
        // routes point at it, so NAT replies leave through a gateway as on
        // a real director.
        let cli = &lab.client.ifaces[0];
        lab.director.add_route("default", cli.addr(Family::V4))?;
        lab.director.add_route("default", cli.addr(Family::V6))?;
        let gw = &lab.director.ifaces[1];
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
    /// director, real servers.
    fn skeleton(&self, plan: &Plan) -> Result<Topology> {
        let id = netns::next_id();
        let switch = Netns::with_id(&self.role("sw"), id)?;
        switch.add_bridge("br0")?;
        let client = self.host(id, "client", "cli")?;
        let director = self.host(id, "director", "dir")?;
        let mut real_servers = Vec::with_capacity(self.real_servers);
        for n in 1..=self.real_servers {
            real_servers.push(self.host(id, &format!("rs{n}"), &format!("rs{n}"))?);
        }
        Ok(Topology {
            mode: self.mode,
            vip: (plan.vip4, plan.vip6),
            client,
            director,
            real_servers,
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
}

/// A built LVS lab; dropping it deletes every namespace (also while a
/// failing test unwinds).
#[derive(Debug)]
pub struct Topology {
    mode: Mode,
    vip: (Ipv4Addr, Ipv6Addr),
    client: Host,
    director: Host,
    real_servers: Vec<Host>,
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

    /// The director host (where `xvsd` runs).
    pub fn director(&self) -> &Host {
        &self.director
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
        &self.director.ifaces[0]
    }

    /// The director's interface facing the real servers (`eth1` in NAT,
    /// `eth0` otherwise).
    pub fn director_inside(&self) -> &Iface {
        self.director
            .ifaces
            .last()
            .unwrap_or(&self.director.ifaces[0])
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
        self.director.ip_forward(true)?;
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
        self.director.ip_forward(true)?;
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
        self.director.nft(&rules)
    }

    /// Undoes the baselines: forwarding off, the lab's nftables table and
    /// the client's inside routes removed, so that the userspace director
    /// can be measured next in the same lab.
    pub fn disable_kernel_director(&self) -> Result<()> {
        self.director.ip_forward(false)?;
        let _ = self
            .director
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
        host("XVS_DIRECTOR", &self.director);
        for (i, rs) in self.real_servers.iter().enumerate() {
            host(&format!("XVS_RS{}", i + 1), rs);
        }
        v
    }
}
