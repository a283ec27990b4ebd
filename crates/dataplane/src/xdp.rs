//! The XDP steering program (`bpf/xvs_steer.bpf.c`): load it, attach it to
//! interfaces, keep its maps in step with the configuration, and put the
//! AF_XDP sockets ([`crate::xsk::Socket`]) into its socket map.
//!
//! # What reaches the sockets
//!
//! The program redirects to the socket of the receive queue only what the
//! director handles, and passes everything else (ARP, neighbour discovery,
//! SSH, routing protocols, the host's own traffic) to the kernel:
//!
//! 1. packets to a VIP: `(proto, dst, dport)`, `(proto, dst, 0)` (every port)
//!    or `(0, dst, 0)` (every protocol and port) is in the VIP map;
//! 2. packets from a NAT real server: `(proto, src, sport)` or
//!    `(proto, src, 0)` is in the real-server map (NAT replies);
//! 3. IP fragments (IPv4 MF/offset, IPv6 fragment header) to a VIP address or
//!    from a real-server address, whatever their ports (non-first fragments
//!    have none);
//! 4. ICMP and ICMPv6 errors (v4 types 3, 4, 11, 12; v6 types 1 to 4) whose
//!    quoted packet has a VIP or real-server address as source or destination
//!    (an address-level check), or every ICMP error after
//!    [`Steering::set_all_icmp_errors`]`(true)`.
//!
//! It parses Ethernet, IPv4 with options and IPv6 with up to six extension
//! headers (hop-by-hop, routing, destination options, fragment, AH);
//! anything else is passed, VLAN-tagged frames included (xvsd serves
//! untagged ports: forwarded as if untagged, a tagged frame would reach the
//! real servers on the VLAN its sender chose).
//!
//! # Why aya
//!
//! aya 0.14 is a pure-Rust loader: no C library to build or link, typed map
//! handles (`HashMap<[u8; 20], u32>`, `XskMap`, `PerCpuArray`), bpf_link
//! attachment that detaches when the program is dropped, and no `unsafe` in
//! this module. (aya 0.16 needs a newer Rust than 1.95; libbpf would mean
//! linking a C library only for this.)
//!
//! # Example
//!
//! ```no_run
//! use xvs_conntrack::{Addr, Proto};
//! use xvs_dataplane::xdp::{AttachMode, SteerKey, Steering};
//! use xvs_dataplane::xsk::{Socket, SocketConfig, Umem, UmemConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut steering = Steering::load()?;
//! let att = steering.attach("eth0", AttachMode::Auto)?;
//! steering.insert_vip(SteerKey::new(Proto::Tcp, Addr::v4([192, 0, 2, 10]), 80), 0)?;
//! let mut umem = Umem::new(&UmemConfig::default())?;
//! let sock = Socket::new(&mut umem, "eth0", 0, &SocketConfig::default())?;
//! steering.register_socket(att.ifindex, 0, &sock)?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap as StdHashMap;
use std::io;
use std::os::fd::AsRawFd;

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfError};
use xvs_conntrack::{Addr, Proto};

/// The compiled program, embedded (see `build.rs`).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xvs_steer.bpf.o"));

/// The compiled program object (ELF, BTF maps, section `xdp`), e.g. to
/// inspect it with `bpftool` or load it with `ip link set DEV xdp obj FILE`.
pub fn object_bytes() -> &'static [u8] {
    OBJECT
}

/// Name of the program in the object.
const PROGRAM: &str = "xvs_steer";

/// Queues per interface in the socket map (`XVS_MAX_QUEUES`).
pub const MAX_QUEUES: u32 = 64;
/// Interfaces one loaded program serves (`XVS_MAX_IFACES`).
pub const MAX_IFACES: u32 = 16;

const ADDR_VIP: u32 = 1;
const ADDR_REAL: u32 = 2;
/// One of the director's own addresses (its own connections to NAT real
/// servers, health checks, are not replies to steer).
const ADDR_LOCAL: u32 = 4;
const CFG_ALL_ICMP_ERRORS: u32 = 1;

/// `XDP_FLAGS_SKB_MODE`.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Errors of the XDP loader.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The embedded object did not load (verifier, BTF, maps).
    #[error("loading the XDP object: {0}")]
    Load(#[source] Box<EbpfError>),
    /// Loading, attaching or detaching the program failed.
    #[error("XDP program: {0}")]
    Program(#[source] Box<ProgramError>),
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        /// Which map.
        map: &'static str,
        /// The error.
        #[source]
        source: Box<MapError>,
    },
    /// The object lacks a program or map this module needs.
    #[error("XDP object has no {0}")]
    Missing(&'static str),
    /// A system call failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// More than [`MAX_IFACES`] interfaces.
    #[error("at most {MAX_IFACES} interfaces per program")]
    TooManyInterfaces,
    /// A queue index of [`MAX_QUEUES`] or more.
    #[error("queue {0} out of range (at most {MAX_QUEUES} queues per interface)")]
    QueueOutOfRange(u32),
}

impl From<ProgramError> for XdpError {
    fn from(e: ProgramError) -> Self {
        XdpError::Program(Box::new(e))
    }
}

fn map_err(map: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |e| XdpError::Map {
        map,
        source: Box::new(e),
    }
}

/// A key of the VIP and real-server maps: protocol, address, port.
///
/// `Proto::Any` with port 0 covers every protocol and port of the address;
/// port 0 with a protocol covers every port of that protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SteerKey {
    /// Transport protocol, or [`Proto::Any`].
    pub proto: Proto,
    /// Address (IPv4 held IPv4-mapped).
    pub addr: Addr,
    /// Port, host order; 0 = every port.
    pub port: u16,
}

impl SteerKey {
    /// A key.
    pub fn new(proto: Proto, addr: impl Into<Addr>, port: u16) -> SteerKey {
        SteerKey {
            proto,
            addr: addr.into(),
            port,
        }
    }

    /// The 20-byte map key of `struct steer_key`: proto, pad, port (network
    /// order), address.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut k = [0u8; 20];
        k[0] = self.proto as u8;
        k[2..4].copy_from_slice(&self.port.to_be_bytes());
        k[4..].copy_from_slice(&self.addr.0);
        k
    }
}

/// How to attach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, else generic (SKB) mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Driver,
    /// Generic (SKB) mode only.
    Skb,
}

/// The mode an attachment got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    /// Native (driver) mode.
    Driver,
    /// Generic (SKB) mode.
    Skb,
}

/// One interface the program is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Interface index (in the namespace of the attaching thread).
    pub ifindex: u32,
    /// The interface's slot in the socket map (`slot * MAX_QUEUES + queue`).
    pub slot: u32,
    /// The mode it got.
    pub mode: AttachedMode,
}

/// The program's per-CPU counters, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerStats {
    /// Frames redirected to a socket.
    pub redirected: u64,
    /// Frames passed to the kernel: not for the director.
    pub passed: u64,
    /// Frames for the director, passed to the kernel because their queue had
    /// no socket in the map.
    pub no_socket: u64,
}

/// The loaded steering program and its maps. Dropping it detaches it from
/// every interface and unloads it.
pub struct Steering {
    // Maps first: taken out of `ebpf`, they are plain descriptors.
    vips: HashMap<MapData, [u8; 20], u32>,
    reals: HashMap<MapData, [u8; 20], u32>,
    addrs: HashMap<MapData, [u8; 16], u32>,
    ifslots: HashMap<MapData, u32, u32>,
    xsks: XskMap<MapData>,
    config: Array<MapData, u32>,
    stats: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
    links: Vec<(Attachment, XdpLinkId)>,
    /// Interface index of each slot.
    slots: Vec<u32>,
    vip_set: StdHashMap<SteerKey, u32>,
    real_set: StdHashMap<SteerKey, u32>,
    /// Per address: how many VIP keys and how many real-server keys use it.
    addr_refs: StdHashMap<Addr, (u32, u32)>,
    /// The director's own addresses.
    locals: std::collections::HashSet<Addr>,
    cfg_flags: u32,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("attachments", &self.attachments().collect::<Vec<_>>())
            .field("vips", &self.vip_set.len())
            .field("reals", &self.real_set.len())
            .field("cfg_flags", &self.cfg_flags)
            .finish()
    }
}

impl Steering {
    /// Loads the embedded program (verifier included) and takes its maps.
    /// Needs `CAP_BPF` and `CAP_NET_ADMIN` (root).
    pub fn load() -> Result<Steering, XdpError> {
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| XdpError::Load(Box::new(e)))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or(XdpError::Missing("program xvs_steer"))?
            .try_into()?;
        // The verifier gives up with EAGAIN when a signal reaches the
        // loading thread (a child process of the caller exiting, say);
        // libbpf retries such loads, and so does this.
        let mut tries = 0;
        loop {
            match prog.load() {
                Err(ProgramError::LoadError { io_error, .. })
                    if io_error.raw_os_error() == Some(libc::EAGAIN) && tries < 5 =>
                {
                    tries += 1;
                }
                r => break r?,
            }
        }
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(XdpError::Missing(name));
        let vips = HashMap::try_from(take("vips")?).map_err(map_err("vips"))?;
        let reals = HashMap::try_from(take("reals")?).map_err(map_err("reals"))?;
        let addrs = HashMap::try_from(take("addrs")?).map_err(map_err("addrs"))?;
        let ifslots = HashMap::try_from(take("ifslots")?).map_err(map_err("ifslots"))?;
        let xsks = XskMap::try_from(take("xsks")?).map_err(map_err("xsks"))?;
        let config = Array::try_from(take("config")?).map_err(map_err("config"))?;
        let stats = PerCpuArray::try_from(take("stats")?).map_err(map_err("stats"))?;
        Ok(Steering {
            vips,
            reals,
            addrs,
            ifslots,
            xsks,
            config,
            stats,
            ebpf,
            links: Vec::new(),
            slots: Vec::new(),
            vip_set: StdHashMap::new(),
            real_set: StdHashMap::new(),
            addr_refs: StdHashMap::new(),
            locals: std::collections::HashSet::new(),
            cfg_flags: 0,
        })
    }

    fn program(&mut self) -> Result<&mut Xdp, XdpError> {
        Ok(self
            .ebpf
            .program_mut(PROGRAM)
            .ok_or(XdpError::Missing("program xvs_steer"))?
            .try_into()?)
    }

    /// The socket-map slot of `ifindex`, assigned on first use.
    fn slot(&mut self, ifindex: u32) -> Result<u32, XdpError> {
        if let Some(s) = self.slots.iter().position(|&i| i == ifindex) {
            return Ok(s as u32);
        }
        if self.slots.len() as u32 >= MAX_IFACES {
            return Err(XdpError::TooManyInterfaces);
        }
        let slot = self.slots.len() as u32;
        self.ifslots
            .insert(ifindex, slot, 0)
            .map_err(map_err("ifslots"))?;
        self.slots.push(ifindex);
        Ok(slot)
    }

    /// Attaches to interface `ifname` of the calling thread's namespace.
    /// [`AttachMode::Auto`] tries native mode, then generic mode.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<Attachment, XdpError> {
        let ifindex = crate::xsk::ifindex(ifname)?;
        self.attach_ifindex(ifindex, mode)
    }

    /// As [`Steering::attach`], by interface index.
    pub fn attach_ifindex(
        &mut self,
        ifindex: u32,
        mode: AttachMode,
    ) -> Result<Attachment, XdpError> {
        let slot = self.slot(ifindex)?;
        let tries: &[(XdpMode, AttachedMode)] = match mode {
            AttachMode::Auto => &[
                (XdpMode::Driver, AttachedMode::Driver),
                (XdpMode::Skb, AttachedMode::Skb),
            ],
            AttachMode::Driver => &[(XdpMode::Driver, AttachedMode::Driver)],
            AttachMode::Skb => &[(XdpMode::Skb, AttachedMode::Skb)],
        };
        let prog = self.program()?;
        let mut last = None;
        for &(xm, am) in tries {
            match prog.attach_to_if_index(ifindex, xm) {
                Ok(link) => {
                    let att = Attachment {
                        ifindex,
                        slot,
                        mode: am,
                    };
                    self.links.push((att, link));
                    return Ok(att);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(XdpError::Missing("attach mode"), XdpError::from))
    }

    /// Detaches from `ifindex`; `false` if it was not attached there.
    pub fn detach(&mut self, ifindex: u32) -> Result<bool, XdpError> {
        let Some(pos) = self.links.iter().position(|(a, _)| a.ifindex == ifindex) else {
            return Ok(false);
        };
        let (_, link) = self.links.swap_remove(pos);
        self.program()?.detach(link)?;
        Ok(true)
    }

    /// The current attachments.
    pub fn attachments(&self) -> impl Iterator<Item = Attachment> + '_ {
        self.links.iter().map(|(a, _)| *a)
    }

    /// Puts `socket` (an AF_XDP socket bound to `(ifindex, queue)`) into the
    /// socket map: frames steered on that queue go to it.
    pub fn register_socket(
        &mut self,
        ifindex: u32,
        queue: u32,
        socket: &impl AsRawFd,
    ) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange(queue));
        }
        let slot = self.slot(ifindex)?;
        self.xsks
            .set(slot * MAX_QUEUES + queue, socket.as_raw_fd(), 0)
            .map_err(map_err("xsks"))
    }

    /// Removes the socket of `(ifindex, queue)` from the socket map (its
    /// frames then go to the kernel, counted as `no_socket`). A closed socket
    /// leaves the map by itself.
    pub fn unregister_socket(&mut self, ifindex: u32, queue: u32) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange(queue));
        }
        let slot = self.slot(ifindex)?;
        match self.xsks.unset(slot * MAX_QUEUES + queue) {
            Ok(()) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(e) => Err(map_err("xsks")(e)),
        }
    }

    /// Redirects every ICMP/ICMPv6 error, not only those quoting a VIP or
    /// real-server address.
    pub fn set_all_icmp_errors(&mut self, on: bool) -> Result<(), XdpError> {
        let flags = if on {
            self.cfg_flags | CFG_ALL_ICMP_ERRORS
        } else {
            self.cfg_flags & !CFG_ALL_ICMP_ERRORS
        };
        self.config.set(0, flags, 0).map_err(map_err("config"))?;
        self.cfg_flags = flags;
        Ok(())
    }

    /// Adds or updates a VIP entry (`flags` are stored for the program; 0 is
    /// fine).
    pub fn insert_vip(&mut self, key: SteerKey, flags: u32) -> Result<(), XdpError> {
        self.insert(Kind::Vip, key, flags)
    }

    /// Removes a VIP entry; `false` if absent.
    pub fn remove_vip(&mut self, key: &SteerKey) -> Result<bool, XdpError> {
        self.remove(Kind::Vip, key)
    }

    /// Makes the VIP map exactly `entries`: adds and updates first, then
    /// removes what is gone, so a VIP kept across the change never misses.
    pub fn replace_vips(
        &mut self,
        entries: impl IntoIterator<Item = (SteerKey, u32)>,
    ) -> Result<(), XdpError> {
        self.replace(Kind::Vip, entries)
    }

    /// The VIP entries.
    pub fn vips(&self) -> impl Iterator<Item = (&SteerKey, &u32)> {
        self.vip_set.iter()
    }

    /// Adds or updates a NAT real-server entry (its replies are steered).
    pub fn insert_real(&mut self, key: SteerKey, flags: u32) -> Result<(), XdpError> {
        self.insert(Kind::Real, key, flags)
    }

    /// Removes a real-server entry; `false` if absent.
    pub fn remove_real(&mut self, key: &SteerKey) -> Result<bool, XdpError> {
        self.remove(Kind::Real, key)
    }

    /// Makes the real-server map exactly `entries` (adds first, then removes).
    pub fn replace_reals(
        &mut self,
        entries: impl IntoIterator<Item = (SteerKey, u32)>,
    ) -> Result<(), XdpError> {
        self.replace(Kind::Real, entries)
    }

    /// The real-server entries.
    pub fn reals(&self) -> impl Iterator<Item = (&SteerKey, &u32)> {
        self.real_set.iter()
    }

    /// The program's counters, summed over CPUs.
    pub fn stats(&self) -> Result<SteerStats, XdpError> {
        let sum = |i: u32| -> Result<u64, XdpError> {
            let v = self.stats.get(&i, 0).map_err(map_err("stats"))?;
            Ok(v.iter().sum())
        };
        Ok(SteerStats {
            redirected: sum(0)?,
            passed: sum(1)?,
            no_socket: sum(2)?,
        })
    }

    fn insert(&mut self, kind: Kind, key: SteerKey, flags: u32) -> Result<(), XdpError> {
        let (map, set, name) = match kind {
            Kind::Vip => (&mut self.vips, &mut self.vip_set, "vips"),
            Kind::Real => (&mut self.reals, &mut self.real_set, "reals"),
        };
        map.insert(key.to_bytes(), flags, 0)
            .map_err(map_err(name))?;
        if set.insert(key, flags).is_none() {
            self.addr_ref(kind, key.addr, true)?;
        }
        Ok(())
    }

    fn remove(&mut self, kind: Kind, key: &SteerKey) -> Result<bool, XdpError> {
        let (map, set, name) = match kind {
            Kind::Vip => (&mut self.vips, &mut self.vip_set, "vips"),
            Kind::Real => (&mut self.reals, &mut self.real_set, "reals"),
        };
        if !set.contains_key(key) {
            return Ok(false);
        }
        match map.remove(&key.to_bytes()) {
            Ok(()) => {}
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(map_err(name)(e)),
        }
        set.remove(key);
        self.addr_ref(kind, key.addr, false)?;
        Ok(true)
    }

    fn replace(
        &mut self,
        kind: Kind,
        entries: impl IntoIterator<Item = (SteerKey, u32)>,
    ) -> Result<(), XdpError> {
        let new: StdHashMap<SteerKey, u32> = entries.into_iter().collect();
        for (&k, &f) in &new {
            let set = match kind {
                Kind::Vip => &self.vip_set,
                Kind::Real => &self.real_set,
            };
            if set.get(&k) != Some(&f) {
                self.insert(kind, k, f)?;
            }
        }
        let set = match kind {
            Kind::Vip => &self.vip_set,
            Kind::Real => &self.real_set,
        };
        let gone: Vec<SteerKey> = set
            .keys()
            .filter(|k| !new.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            self.remove(kind, &k)?;
        }
        Ok(())
    }

    /// Counts one more (or one fewer) key of `kind` on `addr` and keeps the
    /// address map's flags in step.
    fn addr_ref(&mut self, kind: Kind, addr: Addr, up: bool) -> Result<(), XdpError> {
        let local = self.locals.contains(&addr);
        let refs = self.addr_refs.entry(addr).or_insert((0, 0));
        let before = flags_of(*refs, local);
        let n = match kind {
            Kind::Vip => &mut refs.0,
            Kind::Real => &mut refs.1,
        };
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
        let refs = *refs;
        if refs == (0, 0) {
            self.addr_refs.remove(&addr);
        }
        self.write_addr(addr, before, flags_of(refs, local))
    }

    /// Makes the director's own addresses exactly `addrs` (their flag in
    /// the address map).
    pub fn replace_locals(
        &mut self,
        addrs: impl IntoIterator<Item = Addr>,
    ) -> Result<(), XdpError> {
        let new: std::collections::HashSet<Addr> = addrs.into_iter().collect();
        let changed: Vec<Addr> = new.symmetric_difference(&self.locals).copied().collect();
        let old = std::mem::replace(&mut self.locals, new);
        for a in changed {
            let refs = self.addr_refs.get(&a).copied().unwrap_or((0, 0));
            let before = flags_of(refs, old.contains(&a));
            let after = flags_of(refs, self.locals.contains(&a));
            self.write_addr(a, before, after)?;
        }
        Ok(())
    }

    /// The director's own addresses in the address map.
    pub fn locals(&self) -> impl Iterator<Item = &Addr> {
        self.locals.iter()
    }

    fn write_addr(&mut self, addr: Addr, before: u32, after: u32) -> Result<(), XdpError> {
        if before == after {
            return Ok(());
        }
        if after == 0 {
            match self.addrs.remove(&addr.0) {
                Ok(()) => Ok(()),
                Err(MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
                {
                    Ok(())
                }
                Err(e) => Err(map_err("addrs")(e)),
            }
        } else {
            self.addrs
                .insert(addr.0, after, 0)
                .map_err(map_err("addrs"))
        }
    }

    /// Runs the program once over `frame` (`BPF_PROG_TEST_RUN`, loopback
    /// ingress, queue 0) and returns its XDP action. For tests: with no
    /// socket on slot 0 queue 0, a steered frame is passed and counted as
    /// `no_socket`.
    pub fn test_run(&self, frame: &[u8]) -> Result<u32, XdpError> {
        use aya::programs::{TestRun, TestRunOptions};
        let prog: &Xdp = self
            .ebpf
            .program(PROGRAM)
            .ok_or(XdpError::Missing("program xvs_steer"))?
            .try_into()?;
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..TestRunOptions::default()
        };
        Ok(prog.test_run(opts)?.return_value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Vip,
    Real,
}

fn flags_of((vips, reals): (u32, u32), local: bool) -> u32 {
    (if vips > 0 { ADDR_VIP } else { 0 })
        | (if reals > 0 { ADDR_REAL } else { 0 })
        | (if local { ADDR_LOCAL } else { 0 })
}

/// Detaches whatever XDP program was attached through netlink to `ifindex`
/// (native and generic mode), e.g. one left behind by `ip link set ... xdp`
/// or a crashed tool. Programs attached through a bpf_link (as
/// [`Steering::attach`] does) go away with their owner process; for a live
/// one the kernel answers `EBUSY`.
pub fn detach_ifindex(ifindex: u32) -> io::Result<()> {
    let mut first_err = None;
    for mode in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
        if let Err(e) = crate::xsk::netlink_xdp_detach(ifindex, mode) {
            // Native mode on a device without it is not an error here.
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) && first_err.is_none() {
                first_err = Some(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    //! The classifier, run with `BPF_PROG_TEST_RUN` over hand-built frames:
    //! no socket is registered, so a steered frame shows as `no_socket` and
    //! a passed one as `passed`. Needs root; skipped otherwise (fails when
    //! `CI=true`).
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Verdict {
        Steer,
        Pass,
    }
    use Verdict::{Pass, Steer};

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
            })
            .unwrap_or(false)
    }

    /// The loaded program, or `None` (skip) when not root outside CI.
    fn load() -> Option<Steering> {
        if !is_root() {
            let why = "XDP classifier tests need root (CAP_BPF, CAP_NET_ADMIN)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipping: {why}");
            return None;
        }
        Some(Steering::load().expect("the XDP program loads on this kernel"))
    }

    fn verdict(s: &Steering, frame: &[u8]) -> Verdict {
        let before = s.stats().unwrap();
        let action = s.test_run(frame).unwrap();
        assert_eq!(action, 2, "always XDP_PASS without a socket");
        let after = s.stats().unwrap();
        match (
            after.no_socket - before.no_socket,
            after.passed - before.passed,
        ) {
            (1, 0) => Steer,
            (0, 1) => Pass,
            d => panic!("unexpected counter change {d:?}"),
        }
    }

    const MACS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];

    fn eth(ethertype: u16, vlans: &[u16]) -> Vec<u8> {
        let mut f = MACS.to_vec();
        for &tpid in vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&[0, 10]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4(
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        frag: u16,
        options: usize,
        l4: &[u8],
    ) -> Vec<u8> {
        let ihl = 20 + options;
        let mut h = vec![0u8; ihl];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[2..4].copy_from_slice(&((ihl + l4.len()) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        for b in &mut h[20..] {
            *b = 1; // NOP options
        }
        h.extend_from_slice(l4);
        h
    }

    fn ipv6(nh: u8, src: [u8; 16], dst: [u8; 16], rest: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
        h[6] = nh;
        h[7] = 64;
        h[8..24].copy_from_slice(&src);
        h[24..40].copy_from_slice(&dst);
        h.extend_from_slice(rest);
        h
    }

    fn ports(sport: u16, dport: u16) -> Vec<u8> {
        let mut u = vec![0u8; 8];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&8u16.to_be_bytes());
        u.extend_from_slice(b"payload!");
        u
    }

    fn frame(l2: Vec<u8>, l3: Vec<u8>) -> Vec<u8> {
        let mut f = l2;
        f.extend_from_slice(&l3);
        f
    }

    const VIP: [u8; 4] = [192, 0, 2, 10];
    const CLIENT: [u8; 4] = [198, 51, 100, 7];
    const REAL: [u8; 4] = [10, 1, 0, 5];
    const VIP6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

    fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        frame(
            eth(0x0800, &[]),
            ipv4(17, src, dst, 0x4000, 0, &ports(sport, dport)),
        )
    }

    #[test]
    fn vip_ports_protocols_and_vlans() {
        let Some(mut s) = load() else { return };
        s.insert_vip(SteerKey::new(Proto::Udp, Addr::v4(VIP), 53), 0)
            .unwrap();
        s.insert_vip(SteerKey::new(Proto::Tcp, Addr::v4(VIP), 0), 0)
            .unwrap();

        assert_eq!(verdict(&s, &udp4(CLIENT, 4000, VIP, 53)), Steer);
        assert_eq!(
            verdict(&s, &udp4(CLIENT, 4000, VIP, 54)),
            Pass,
            "other UDP port"
        );
        assert_eq!(
            verdict(&s, &udp4(CLIENT, 4000, CLIENT, 53)),
            Pass,
            "other address"
        );
        let tcp = |dport| {
            frame(
                eth(0x0800, &[]),
                ipv4(6, CLIENT, VIP, 0, 0, &ports(4000, dport)),
            )
        };
        assert_eq!(
            verdict(&s, &tcp(22)),
            Steer,
            "TCP port 0 entry covers all ports"
        );
        let sctp = frame(
            eth(0x0800, &[]),
            ipv4(132, CLIENT, VIP, 0, 0, &ports(4000, 53)),
        );
        assert_eq!(verdict(&s, &sctp), Pass, "SCTP has no entry");

        // VLAN-tagged frames are the kernel's; IPv4 options are parsed.
        let l3 = ipv4(17, CLIENT, VIP, 0, 0, &ports(4000, 53));
        for tags in [&[0x8100][..], &[0x88a8, 0x8100], &[0x8100, 0x8100, 0x8100]] {
            assert_eq!(
                verdict(&s, &frame(eth(0x0800, tags), l3.clone())),
                Pass,
                "tags {tags:x?}"
            );
        }
        let opts = frame(
            eth(0x0800, &[]),
            ipv4(17, CLIENT, VIP, 0, 12, &ports(4000, 53)),
        );
        assert_eq!(verdict(&s, &opts), Steer);

        // ICMP echo: only with an "any protocol" entry.
        let echo = frame(
            eth(0x0800, &[]),
            ipv4(1, CLIENT, VIP, 0, 0, &[8, 0, 0, 0, 0, 1, 0, 1]),
        );
        assert_eq!(verdict(&s, &echo), Pass);
        s.insert_vip(SteerKey::new(Proto::Any, Addr::v4(VIP), 0), 0)
            .unwrap();
        assert_eq!(verdict(&s, &echo), Steer);
        assert!(
            s.remove_vip(&SteerKey::new(Proto::Any, Addr::v4(VIP), 0))
                .unwrap()
        );
        assert_eq!(verdict(&s, &echo), Pass);

        // Removal and replace-all.
        assert!(
            s.remove_vip(&SteerKey::new(Proto::Udp, Addr::v4(VIP), 53))
                .unwrap()
        );
        assert!(
            !s.remove_vip(&SteerKey::new(Proto::Udp, Addr::v4(VIP), 53))
                .unwrap()
        );
        assert_eq!(verdict(&s, &udp4(CLIENT, 4000, VIP, 53)), Pass);
        s.replace_vips([(SteerKey::new(Proto::Udp, Addr::v4(VIP), 54), 0)])
            .unwrap();
        assert_eq!(s.vips().count(), 1);
        assert_eq!(verdict(&s, &udp4(CLIENT, 4000, VIP, 54)), Steer);
        assert_eq!(verdict(&s, &tcp(22)), Pass, "replaced away");
    }

    #[test]
    fn non_ip_and_truncated_frames_pass() {
        let Some(mut s) = load() else { return };
        s.insert_vip(SteerKey::new(Proto::Any, Addr::v4(VIP), 0), 0)
            .unwrap();
        let mut arp = eth(0x0806, &[]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[0; 20]);
        assert_eq!(verdict(&s, &arp), Pass);
        let full = udp4(CLIENT, 4000, VIP, 53);
        assert_eq!(verdict(&s, &full), Steer);
        // Cut inside the IPv4 header: passed. (BPF_PROG_TEST_RUN needs at
        // least an Ethernet header.)
        for len in 14..34 {
            assert_eq!(verdict(&s, &full[..len]), Pass, "cut at {len}");
        }
        // A UDP header cut inside the ports is passed, whatever the entries.
        assert_eq!(verdict(&s, &full[..36]), Pass);
    }

    #[test]
    fn ipv6_and_extension_headers() {
        let Some(mut s) = load() else { return };
        s.insert_vip(SteerKey::new(Proto::Tcp, Addr::v6(VIP6), 443), 0)
            .unwrap();
        let tcp = ports(5000, 443);
        let plain = frame(eth(0x86dd, &[]), ipv6(6, CLIENT6, VIP6, &tcp));
        assert_eq!(verdict(&s, &plain), Steer);
        let other = frame(eth(0x86dd, &[]), ipv6(6, CLIENT6, VIP6, &ports(5000, 80)));
        assert_eq!(verdict(&s, &other), Pass);

        // Hop-by-hop (8 bytes) then destination options (16 bytes) then TCP.
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&tcp);
        let with_ext = frame(eth(0x86dd, &[]), ipv6(0, CLIENT6, VIP6, &ext));
        assert_eq!(verdict(&s, &with_ext), Steer);

        // First fragment (offset 0, M=1) still has ports; a later one does
        // not and is steered by address.
        let mut first = vec![6, 0, 0x00, 0x01, 0, 0, 0, 1];
        first.extend_from_slice(&tcp);
        assert_eq!(
            verdict(
                &s,
                &frame(eth(0x86dd, &[]), ipv6(44, CLIENT6, VIP6, &first))
            ),
            Steer
        );
        let later = [6, 0, 0x05, 0x00, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        assert_eq!(
            verdict(
                &s,
                &frame(eth(0x86dd, &[]), ipv6(44, CLIENT6, VIP6, &later))
            ),
            Steer
        );
        assert_eq!(
            verdict(
                &s,
                &frame(eth(0x86dd, &[]), ipv6(44, VIP6, CLIENT6, &later))
            ),
            Pass,
            "fragment to a non-VIP address"
        );
        // Neighbour solicitation (ICMPv6 135) passes.
        let ns = frame(
            eth(0x86dd, &[]),
            ipv6(58, CLIENT6, VIP6, &[135, 0, 0, 0, 0, 0, 0, 0]),
        );
        assert_eq!(verdict(&s, &ns), Pass);
    }

    #[test]
    fn fragments_follow_the_address_map() {
        let Some(mut s) = load() else { return };
        let later = |dst| {
            frame(
                eth(0x0800, &[]),
                ipv4(17, CLIENT, dst, 0x00b9, 0, b"rest of it"),
            )
        };
        assert_eq!(verdict(&s, &later(VIP)), Pass);
        s.insert_vip(SteerKey::new(Proto::Udp, Addr::v4(VIP), 53), 0)
            .unwrap();
        s.insert_vip(SteerKey::new(Proto::Tcp, Addr::v4(VIP), 80), 0)
            .unwrap();
        assert_eq!(verdict(&s, &later(VIP)), Steer);
        assert_eq!(verdict(&s, &later(CLIENT)), Pass);
        // A first fragment (MF, offset 0) to another port of the VIP
        // address: steered too, all fragments go to the same place.
        let first = frame(
            eth(0x0800, &[]),
            ipv4(17, CLIENT, VIP, 0x2000, 0, &ports(1, 9)),
        );
        assert_eq!(verdict(&s, &first), Steer);
        // The address stays steered until its last key goes.
        s.remove_vip(&SteerKey::new(Proto::Udp, Addr::v4(VIP), 53))
            .unwrap();
        assert_eq!(verdict(&s, &later(VIP)), Steer);
        s.remove_vip(&SteerKey::new(Proto::Tcp, Addr::v4(VIP), 80))
            .unwrap();
        assert_eq!(verdict(&s, &later(VIP)), Pass);
    }

    #[test]
    fn nat_replies_from_real_servers() {
        let Some(mut s) = load() else { return };
        s.insert_real(SteerKey::new(Proto::Tcp, Addr::v4(REAL), 8080), 0)
            .unwrap();
        let from = |sport| {
            frame(
                eth(0x0800, &[]),
                ipv4(6, REAL, CLIENT, 0, 0, &ports(sport, 4000)),
            )
        };
        assert_eq!(verdict(&s, &from(8080)), Steer);
        assert_eq!(verdict(&s, &from(22)), Pass, "SSH from the real server");
        s.insert_real(SteerKey::new(Proto::Tcp, Addr::v4(REAL), 0), 0)
            .unwrap();
        assert_eq!(verdict(&s, &from(22)), Steer, "port 0 covers every port");
        s.replace_reals([]).unwrap();
        assert_eq!(verdict(&s, &from(8080)), Pass);
        // Fragments from a real-server address.
        s.insert_real(SteerKey::new(Proto::Udp, Addr::v4(REAL), 53), 0)
            .unwrap();
        let frag = frame(eth(0x0800, &[]), ipv4(17, REAL, CLIENT, 0x0010, 0, b"more"));
        assert_eq!(verdict(&s, &frag), Steer);
    }

    /// The director's own connections to a NAT real server (its health
    /// checks) stay with the kernel: the answer goes to a local address.
    #[test]
    fn own_connections_to_real_servers_are_the_kernels() {
        let Some(mut s) = load() else { return };
        const ME: [u8; 4] = [10, 1, 0, 1];
        s.insert_real(SteerKey::new(Proto::Tcp, Addr::v4(REAL), 8080), 0)
            .unwrap();
        s.replace_locals([Addr::v4(ME)]).unwrap();
        let to = |dst| {
            frame(
                eth(0x0800, &[]),
                ipv4(6, REAL, dst, 0, 0, &ports(8080, 4000)),
            )
        };
        assert_eq!(verdict(&s, &to(ME)), Pass, "a health check's answer");
        assert_eq!(verdict(&s, &to(CLIENT)), Steer, "a reply to a client");
        // Replacing the set drops ME (REAL, also a real server, keeps its
        // real-server flag beside the local one).
        s.replace_locals([Addr::v4(REAL)]).unwrap();
        assert_eq!(verdict(&s, &to(ME)), Steer, "no longer local");
        assert_eq!(s.locals().count(), 1);
        s.replace_locals([]).unwrap();
        s.replace_reals([]).unwrap();
        assert_eq!(verdict(&s, &to(CLIENT)), Pass);
    }

    #[test]
    fn icmp_errors_quoting_a_vip_or_real() {
        let Some(mut s) = load() else { return };
        s.insert_vip(SteerKey::new(Proto::Tcp, Addr::v4(VIP), 80), 0)
            .unwrap();
        s.insert_vip(SteerKey::new(Proto::Tcp, Addr::v6(VIP6), 80), 0)
            .unwrap();
        let router = [203, 0, 113, 1];
        // Fragmentation needed about a packet VIP:80 -> client.
        let quoted = ipv4(6, VIP, CLIENT, 0x4000, 0, &ports(80, 4000));
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
        icmp.extend_from_slice(&quoted[..28]);
        let err = frame(eth(0x0800, &[]), ipv4(1, router, VIP, 0, 0, &icmp));
        assert_eq!(verdict(&s, &err), Steer);
        // The same error about unrelated traffic passes...
        let quoted = ipv4(6, CLIENT, router, 0x4000, 0, &ports(80, 4000));
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
        icmp.extend_from_slice(&quoted[..28]);
        let unrelated = frame(eth(0x0800, &[]), ipv4(1, router, CLIENT, 0, 0, &icmp));
        assert_eq!(verdict(&s, &unrelated), Pass);
        // ...unless every ICMP error is asked for.
        s.set_all_icmp_errors(true).unwrap();
        assert_eq!(verdict(&s, &unrelated), Steer);
        s.set_all_icmp_errors(false).unwrap();
        assert_eq!(verdict(&s, &unrelated), Pass);

        // ICMPv6 packet too big quoting VIP6 -> client.
        let quoted = ipv6(6, VIP6, CLIENT6, &ports(80, 4000));
        let mut icmp6 = vec![2, 0, 0, 0, 0, 0, 5, 0];
        icmp6.extend_from_slice(&quoted[..48]);
        let router6 = [
            0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        let err6 = frame(eth(0x86dd, &[]), ipv6(58, router6, VIP6, &icmp6));
        assert_eq!(verdict(&s, &err6), Steer);
        // An echo reply is not an error.
        let mut reply = vec![129, 0, 0, 0, 0, 1, 0, 1];
        reply.extend_from_slice(&quoted[..48]);
        let echo6 = frame(eth(0x86dd, &[]), ipv6(58, router6, VIP6, &reply));
        assert_eq!(verdict(&s, &echo6), Pass);
    }

    #[test]
    fn steer_key_layout() {
        let k = SteerKey::new(Proto::Udp, Addr::v4([10, 0, 0, 1]), 0x1234);
        let b = k.to_bytes();
        assert_eq!(&b[..4], &[17, 0, 0x12, 0x34]);
        assert_eq!(&b[4..16], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(&b[16..], &[10, 0, 0, 1]);
    }
}
