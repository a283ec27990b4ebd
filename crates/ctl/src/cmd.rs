//! The typed commands of the ipvsadm language, their defaults and limits.
//!
//! These types are what [`crate::parse_args`] and [`crate::parse_restore`]
//! produce and what [`crate::save_line`] prints back. They carry no
//! behaviour: the daemon applies them. [`Command::validate`] checks every
//! rule that does not depend on the director's current state, so a command
//! that arrives by another road (a socket, a test) is held to the same rules
//! as one typed on the command line.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use xvs_health::{Check, Feedback, ServicePolicy, Timing};

use serde::{Deserialize, Serialize};
use xvs_conntrack::{Af, Fwd, Proto};
use xvs_sched::SchedFlags;

use crate::GrammarError;

/// Longest timeout ipvsadm accepts, in seconds (31 days): the bound of `-p`
/// and of each `--set` value.
pub const MAX_TIMEOUT: u32 = 86_400 * 31;

/// Persistence timeout of `-p` given without a value, in seconds
/// (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE: u32 = 300;

/// Highest real server weight ipvsadm accepts (the kernel only refuses
/// negative weights).
pub const MAX_WEIGHT: i32 = 65_535;

/// Highest connection threshold (`-x`, `-y`) ipvsadm accepts (`INT_MAX`).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Weight of a real server added without `-w`.
pub const DEFAULT_WEIGHT: i32 = 1;

/// Multicast interface of `--start-daemon` without `--mcast-interface`.
pub const DEFAULT_MCAST_IFACE: &str = "eth0";

/// Longest interface name (`IFNAMSIZ - 1`).
pub const MAX_IFACE_LEN: usize = 15;

/// Longest sync message `--sync-maxlen` accepts (65535 minus the IPv4 and
/// UDP headers).
pub const MAX_SYNC_MAXLEN: u16 = 65_535 - 20 - 8;

/// A virtual service: what `-t`, `-u`, `--sctp-service` or `-f` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SvcKey {
    /// A protocol, address and port (`-t`, `-u`, `--sctp-service`). Port 0
    /// is a port-zero service: it matches every port and needs persistence.
    Tuple {
        /// [`Proto::Tcp`], [`Proto::Udp`] or [`Proto::Sctp`].
        #[serde(with = "crate::serde_ext::proto")]
        proto: Proto,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0: every port).
        port: u16,
    },
    /// A firewall mark (`-f`, with `-6` for IPv6).
    Fwmark {
        /// The mark, greater than zero.
        mark: u32,
        /// Address family of the packets and real servers.
        #[serde(with = "crate::serde_ext::af")]
        af: Af,
    },
}

impl SvcKey {
    /// Address family of the service.
    pub fn af(&self) -> Af {
        match self {
            SvcKey::Tuple { addr, .. } => af_of(addr),
            SvcKey::Fwmark { af, .. } => *af,
        }
    }

    /// The virtual port (0 for fwmark and port-zero services).
    pub fn port(&self) -> u16 {
        match self {
            SvcKey::Tuple { port, .. } => *port,
            SvcKey::Fwmark { .. } => 0,
        }
    }

    /// The protocol service names of ports are looked up under: the
    /// service's own, TCP for fwmark services (as ipvsadm).
    pub fn proto(&self) -> Proto {
        match self {
            SvcKey::Tuple { proto, .. } => *proto,
            SvcKey::Fwmark { .. } => Proto::Tcp,
        }
    }

    /// Checks the key alone: a TCP, UDP or SCTP tuple with an address that
    /// is not IPv4-mapped, or a non-zero mark.
    pub fn validate(&self) -> Result<(), GrammarError> {
        match self {
            SvcKey::Tuple { proto, addr, .. } => {
                if *proto == Proto::Any {
                    return Err(GrammarError::BadProtocol);
                }
                check_not_mapped(addr)
            }
            SvcKey::Fwmark { mark: 0, .. } => Err(GrammarError::InvalidValue {
                what: "fwmark",
                value: "0".into(),
                reason: "must be greater than zero".into(),
            }),
            SvcKey::Fwmark { .. } => Ok(()),
        }
    }
}

impl fmt::Display for SvcKey {
    /// As `ipvsadm -L -n` prints it: `TCP  192.0.2.1:80`,
    /// `UDP  [2001:db8::1]:53`, `SCTP 192.0.2.1:5060`, `FWM  5`,
    /// `FWM  5 IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SvcKey::Tuple { proto, addr, port } => {
                write!(f, "{:<4} {}", proto.name(), HostPort(*addr, *port))
            }
            SvcKey::Fwmark { mark, af: Af::V4 } => write!(f, "FWM  {mark}"),
            SvcKey::Fwmark { mark, af: Af::V6 } => write!(f, "FWM  {mark} IPv6"),
        }
    }
}

/// `192.0.2.1:80` or `[2001:db8::1]:80`, as ipvsadm prints addresses with
/// ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPort(pub IpAddr, pub u16);

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// An alternative persistence engine (`--pe`). IPVS has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pe {
    /// `sip`: persistence by SIP Call-ID.
    Sip,
}

impl Pe {
    /// The name `--pe` takes.
    pub fn name(self) -> &'static str {
        match self {
            Pe::Sip => "sip",
        }
    }
}

/// The settings of a virtual service (`-A`, `-E`).
///
/// `-E` replaces every setting, as in ipvsadm: an option left out of `-E`
/// takes its default, it does not keep the old value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOpts {
    /// Scheduler (`-s`), one of [`xvs_sched::NAMES`]; default
    /// [`xvs_sched::DEFAULT`] (`wlc`).
    pub scheduler: String,
    /// Scheduler flags (`-b`).
    #[serde(with = "crate::serde_ext::sched_flags")]
    pub sched_flags: SchedFlags,
    /// Persistence timeout in seconds (`-p [timeout]`, 1..=[`MAX_TIMEOUT`],
    /// [`DEFAULT_PERSISTENCE`] without a value); `None`: not persistent.
    pub persistence: Option<u32>,
    /// Persistence granularity as a prefix length (`-M`: a dotted mask for
    /// IPv4, a prefix length for IPv6). `None` is per client host (/32 or
    /// /128, the default); a full-length mask is always `None` (the parser
    /// stores `-M 255.255.255.255` so, and validation refuses `Some(32)`),
    /// so `Some` holds 0..=31 for IPv4 and 1..=127 for IPv6.
    pub netmask: Option<u8>,
    /// One-packet scheduling (`-o`), for UDP and fwmark services.
    pub one_packet: bool,
    /// Persistence engine (`--pe`).
    pub pe: Option<Pe>,
    /// What failed real servers do to the service (`--health`, xvs):
    /// quorum, sorry server, inhibit. `None`: on `-A` the defaults, on
    /// `-E` unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ServicePolicy>,
}

impl Default for ServiceOpts {
    fn default() -> ServiceOpts {
        ServiceOpts {
            scheduler: xvs_sched::DEFAULT.to_owned(),
            sched_flags: SchedFlags::NONE,
            persistence: None,
            netmask: None,
            one_packet: false,
            pe: None,
            health: None,
        }
    }
}

/// Tunnel encapsulation of a `-i` real server (`--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunType {
    /// IP-in-IP (the default).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to `port` (`--tun-type gue --tun-port`).
    Gue {
        /// UDP destination port, 1..=65535.
        port: u16,
    },
    /// GRE (parsed; the director may refuse it).
    Gre,
}

impl TunType {
    /// The name `--tun-type` takes.
    pub fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue { .. } => "gue",
            TunType::Gre => "gre",
        }
    }
}

/// Checksum mode of a GUE or GRE tunnel (`--tun-nocsum`, `--tun-csum`,
/// `--tun-remcsum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunCsum {
    /// No checksum (the default).
    #[default]
    NoCsum,
    /// Outer checksum (GUE and GRE).
    Csum,
    /// Remote checksum offload (GUE only).
    RemCsum,
}

impl TunCsum {
    /// The option that selects this mode.
    pub fn option(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "--tun-nocsum",
            TunCsum::Csum => "--tun-csum",
            TunCsum::RemCsum => "--tun-remcsum",
        }
    }
}

/// A real server and its settings (`-a`, `-e`).
///
/// `-e` replaces every setting, as in ipvsadm: `-e ... -w 3` without `-m`
/// sets the forwarding method back to the default `-g`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestOpts {
    /// Real server address (`-r`).
    pub addr: IpAddr,
    /// Real server port. The service's port when `-r` has none; always the
    /// service's port for `-g` and `-i` on non-fwmark services (ipvsadm
    /// overrides it: neither method can change the port). 0 on fwmark and
    /// port-zero services means "the packet's own port".
    pub port: u16,
    /// Forwarding method (`-g` default, `-i`, `-m`).
    #[serde(with = "crate::serde_ext::fwd")]
    pub fwd: Fwd,
    /// Weight (`-w`), 0..=[`MAX_WEIGHT`]; 0 is quiescent.
    pub weight: i32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper: u32,
    /// Lower connection threshold (`-y`), 0 = none; never above `upper`.
    pub lower: u32,
    /// Tunnel type (`--tun-type`, only with `-i`).
    pub tun_type: TunType,
    /// Tunnel checksum mode (only with GUE and GRE).
    pub tun_csum: TunCsum,
    /// Health check (`--check`, `--check-timing`, xvs). `None`: on `-a`
    /// no check, on `-e` the check stays as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<HealthCheck>,
    /// Dynamic-feedback load endpoint (`--feedback`, xvs). `None`: on `-a`
    /// none, on `-e` unchanged; `Some(None)`: `--feedback none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Option<Feedback>>,
}

/// A real server's health check setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    /// `--check none`: not checked.
    Off,
    /// Checked with `check` on `timing`.
    On {
        /// What is checked.
        check: Check,
        /// How often and how patiently.
        timing: Timing,
    },
}

impl DestOpts {
    /// A real server with ipvsadm's defaults: `-g`, weight 1, no
    /// thresholds, IP-in-IP if tunnelled.
    pub fn new(addr: IpAddr, port: u16) -> DestOpts {
        DestOpts {
            addr,
            port,
            fwd: Fwd::Route,
            weight: DEFAULT_WEIGHT,
            upper: 0,
            lower: 0,
            tun_type: TunType::Ipip,
            tun_csum: TunCsum::NoCsum,
            check: None,
            feedback: None,
        }
    }

    /// Checks the real server against its service: limits, address family,
    /// port, thresholds, health check, timing and feedback values (as their
    /// text forms' parsers check them), tunnel settings.
    pub fn validate(&self, svc: &SvcKey) -> Result<(), GrammarError> {
        check_not_mapped(&self.addr)?;
        if !(0..=MAX_WEIGHT).contains(&self.weight) {
            return Err(GrammarError::InvalidValue {
                what: "weight",
                value: self.weight.to_string(),
                reason: format!("must be 0..={MAX_WEIGHT}"),
            });
        }
        for (what, v) in [
            ("upper threshold", self.upper),
            ("lower threshold", self.lower),
        ] {
            if v > MAX_THRESHOLD {
                return Err(GrammarError::InvalidValue {
                    what,
                    value: v.to_string(),
                    reason: format!("must be 0..={MAX_THRESHOLD}"),
                });
            }
        }
        if self.lower > self.upper {
            return Err(GrammarError::ThresholdOrder {
                upper: self.upper,
                lower: self.lower,
            });
        }
        let daf = af_of(&self.addr);
        if daf != svc.af() && self.fwd != Fwd::Tunnel {
            return Err(GrammarError::FamilyMismatch);
        }
        if let SvcKey::Tuple { port, .. } = svc {
            if self.fwd != Fwd::Masq && self.port != *port {
                return Err(GrammarError::DestPortMismatch {
                    dest: self.port,
                    svc: *port,
                });
            }
            if self.fwd == Fwd::Masq && self.port == 0 && *port != 0 {
                return Err(GrammarError::DestPortZero);
            }
        }
        // What `--check`, `--check-timing` and `--feedback` check when they
        // are parsed: a command may come as JSON, not through the grammar.
        let spec = |what: &'static str, value: String, e: xvs_health::SpecError| {
            GrammarError::InvalidValue {
                what,
                value,
                reason: e.to_string(),
            }
        };
        if let Some(HealthCheck::On { check, timing }) = &self.check {
            check
                .validate()
                .map_err(|e| spec("check", check.to_string(), e))?;
            timing
                .validate()
                .map_err(|e| spec("check timing", timing.to_string(), e))?;
        }
        if let Some(Some(fb)) = &self.feedback {
            fb.validate()
                .map_err(|e| spec("feedback", fb.to_string(), e))?;
        }
        if self.fwd != Fwd::Tunnel {
            if self.tun_type != TunType::Ipip || self.tun_csum != TunCsum::NoCsum {
                return Err(GrammarError::TunnelWithoutIpip);
            }
            return Ok(());
        }
        match (self.tun_type, self.tun_csum) {
            (TunType::Ipip, TunCsum::NoCsum) => Ok(()),
            (TunType::Gue { port: 0 }, _) => Err(GrammarError::MissingTunnelOption {
                option: "--tun-port",
                tun: "gue",
            }),
            (TunType::Gue { .. }, _) => Ok(()),
            (TunType::Gre, TunCsum::NoCsum | TunCsum::Csum) => Ok(()),
            (t, c) => Err(GrammarError::IllegalTunnelOption {
                option: c.option(),
                tun: t.name(),
            }),
        }
    }
}

/// What `-L` lists and how (`-L` without `--timeout` or `--daemon`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOpts {
    /// `-n`: numeric addresses and ports.
    pub numeric: bool,
    /// `-c`: the connection table instead of the services.
    pub connections: bool,
    /// `--stats`: traffic counters.
    pub stats: bool,
    /// `--rate`: traffic rates.
    pub rate: bool,
    /// `--exact` (`-X`): exact counters instead of K/M/G.
    pub exact: bool,
    /// `--thresholds`: connection thresholds.
    pub thresholds: bool,
    /// `--persistent-conn`: persistent connection counts (with `-c`: the
    /// persistence engine data).
    pub persistent_conn: bool,
    /// `--tun-info`: tunnel settings of real servers.
    pub tun_info: bool,
    /// Sorted output (default; `--nosort` turns it off).
    pub sort: bool,
    /// Only this service (`-L -t ...`).
    pub service: Option<SvcKey>,
    /// `--json` (xvs): machine-readable output.
    pub json: bool,
    /// `--checks` (xvs): each real server's health check and state.
    pub checks: bool,
}

impl Default for ListOpts {
    fn default() -> ListOpts {
        ListOpts {
            numeric: false,
            connections: false,
            stats: false,
            rate: false,
            exact: false,
            thresholds: false,
            persistent_conn: false,
            tun_info: false,
            sort: true,
            service: None,
            json: false,
            checks: false,
        }
    }
}

/// Role of a connection sync daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Sends connection updates.
    Master,
    /// Receives them.
    Backup,
}

impl SyncState {
    /// `master` or `backup`, as `--start-daemon` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        }
    }
}

/// Settings of `--start-daemon`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonOpts {
    /// Master or backup.
    pub state: SyncState,
    /// `--mcast-interface`, default [`DEFAULT_MCAST_IFACE`].
    pub mcast_iface: String,
    /// `--syncid`, default 0 (no filtering).
    pub syncid: u8,
    /// `--sync-maxlen`, 1..=[`MAX_SYNC_MAXLEN`]; `None`: from the MTU.
    pub sync_maxlen: Option<u16>,
    /// `--mcast-group`, a multicast address; `None`: 224.0.0.81.
    pub mcast_group: Option<IpAddr>,
    /// `--mcast-port`, 1..=65535; `None`: 8848.
    pub mcast_port: Option<u16>,
    /// `--mcast-ttl`, 1..=255; `None`: 1.
    pub mcast_ttl: Option<u8>,
    /// `--sync-peer` (xvs): unicast peers; when set, no multicast.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<SocketAddr>,
}

impl DaemonOpts {
    /// A daemon with ipvsadm's defaults.
    pub fn new(state: SyncState) -> DaemonOpts {
        DaemonOpts {
            state,
            mcast_iface: DEFAULT_MCAST_IFACE.to_owned(),
            syncid: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
            peers: Vec::new(),
        }
    }

    /// Checks the interface name and the ranges.
    pub fn validate(&self) -> Result<(), GrammarError> {
        check_iface(&self.mcast_iface)?;
        if let Some(n) = self.sync_maxlen {
            if n == 0 || n > MAX_SYNC_MAXLEN {
                return Err(GrammarError::InvalidValue {
                    what: "sync-maxlen",
                    value: n.to_string(),
                    reason: format!("must be 1..={MAX_SYNC_MAXLEN}"),
                });
            }
        }
        if let Some(g) = self.mcast_group {
            if !g.is_multicast() {
                return Err(GrammarError::InvalidValue {
                    what: "mcast-group",
                    value: g.to_string(),
                    reason: "not a multicast address".into(),
                });
            }
            check_not_mapped(&g)?;
        }
        if self.mcast_port == Some(0) {
            return Err(GrammarError::InvalidValue {
                what: "mcast-port",
                value: "0".into(),
                reason: "must be 1..=65535".into(),
            });
        }
        for p in &self.peers {
            if p.port() == 0 || p.ip().is_unspecified() || p.ip().is_multicast() {
                return Err(GrammarError::InvalidValue {
                    what: "sync-peer",
                    value: p.to_string(),
                    reason: "needs a unicast address and a port".into(),
                });
            }
        }
        if self.mcast_ttl == Some(0) {
            return Err(GrammarError::InvalidValue {
                what: "mcast-ttl",
                value: "0".into(),
                reason: "must be 1..=255".into(),
            });
        }
        Ok(())
    }
}

/// One ipvsadm command.
///
/// Serialised (serde) as the admin protocol carries it: externally tagged,
/// snake_case variant names (`{"add_service": {"svc": ..., "opts": ...}}`,
/// `"clear"`). A deserialised command has not been validated: call
/// [`Command::validate`] (the control socket server does, see
/// [`crate::server`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `-A`: add a virtual service.
    AddService {
        /// The service.
        svc: SvcKey,
        /// Its settings.
        opts: ServiceOpts,
    },
    /// `-E`: replace the settings of a virtual service.
    EditService {
        /// The service.
        svc: SvcKey,
        /// Its new settings (all of them).
        opts: ServiceOpts,
    },
    /// `-D`: delete a virtual service and its real servers.
    DelService {
        /// The service.
        svc: SvcKey,
    },
    /// `-C`: delete every virtual service.
    Clear,
    /// `-a`: add a real server to a service.
    AddDest {
        /// The service.
        svc: SvcKey,
        /// The real server.
        dest: DestOpts,
    },
    /// `-e`: replace the settings of a real server.
    EditDest {
        /// The service.
        svc: SvcKey,
        /// The real server (found by address and port) and its new settings.
        dest: DestOpts,
    },
    /// `-d`: remove a real server from a service.
    DelDest {
        /// The service.
        svc: SvcKey,
        /// Real server address.
        addr: IpAddr,
        /// Real server port (the service's port when `-r` has none).
        port: u16,
    },
    /// `-Z`: zero the counters of one service, or of all.
    Zero(Option<SvcKey>),
    /// `--set tcp tcpfin udp`: connection timeouts in seconds; 0 leaves a
    /// value unchanged.
    SetTimeouts {
        /// Established TCP.
        tcp: u32,
        /// TCP after a FIN.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
    /// `-L` / `-l`: list services and real servers, or connections.
    List(ListOpts),
    /// `-L --timeout`: the three connection timeouts.
    Timeouts {
        /// `--json` (xvs).
        json: bool,
    },
    /// `-L --daemon`: the sync daemons.
    Daemon {
        /// `--json` (xvs).
        json: bool,
    },
    /// `-S`: print the table as commands ([`crate::save_line`]).
    Save {
        /// `-n`: numeric ports.
        numeric: bool,
    },
    /// `-R`: read commands from standard input ([`crate::parse_restore`]).
    Restore,
    /// `--start-daemon`: start a connection sync daemon.
    StartDaemon(DaemonOpts),
    /// `--stop-daemon`: stop one.
    StopDaemon {
        /// Which one.
        state: SyncState,
        /// `--syncid` (accepted as by ipvsadm; the daemon is found by state).
        syncid: u8,
    },
    /// `-v`: print the version.
    Version,
    /// `-h`: print the help ([`crate::help_text`]).
    Help,
    /// `--dry-run` (xvs): check the command against the director's state
    /// and report, change nothing.
    DryRun(Box<Command>),
}

impl Command {
    /// The short (or only) option that names this command: `-A`, `--set`...
    pub fn option(&self) -> &'static str {
        match self {
            Command::AddService { .. } => "-A",
            Command::EditService { .. } => "-E",
            Command::DelService { .. } => "-D",
            Command::Clear => "-C",
            Command::AddDest { .. } => "-a",
            Command::EditDest { .. } => "-e",
            Command::DelDest { .. } => "-d",
            Command::Zero(_) => "-Z",
            Command::SetTimeouts { .. } => "--set",
            Command::List(_) | Command::Timeouts { .. } | Command::Daemon { .. } => "-L",
            Command::Save { .. } => "-S",
            Command::Restore => "-R",
            Command::StartDaemon(_) => "--start-daemon",
            Command::StopDaemon { .. } => "--stop-daemon",
            Command::Version => "-v",
            Command::Help => "-h",
            Command::DryRun(_) => "--dry-run",
        }
    }

    /// Whether the command changes the director (what a restore file or a
    /// config file may hold).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Command::AddService { .. }
                | Command::EditService { .. }
                | Command::DelService { .. }
                | Command::Clear
                | Command::AddDest { .. }
                | Command::EditDest { .. }
                | Command::DelDest { .. }
                | Command::Zero(_)
                | Command::SetTimeouts { .. }
                | Command::StartDaemon(_)
                | Command::StopDaemon { .. }
        )
    }

    /// Checks every rule that does not depend on the director's state:
    /// the limits above, a known scheduler, port-zero services persistent,
    /// `-o` only for UDP and fwmark services, real servers of the
    /// service's family unless tunnelled, `-g`/`-i` servers on the
    /// service's port, thresholds in order, tunnel options that fit the
    /// tunnel type, health check values as their parsers take them, list
    /// options that go together. Every command [`crate::parse_args`]
    /// returns passes; a command decoded from JSON ([`crate::proto`]) may
    /// hold any value, so the server checks it with this.
    pub fn validate(&self) -> Result<(), GrammarError> {
        match self {
            Command::AddService { svc, opts } | Command::EditService { svc, opts } => {
                validate_service(svc, opts)
            }
            Command::DelService { svc } | Command::Zero(Some(svc)) => svc.validate(),
            Command::AddDest { svc, dest } | Command::EditDest { svc, dest } => {
                svc.validate()?;
                dest.validate(svc)
            }
            Command::DelDest { svc, addr, .. } => {
                svc.validate()?;
                check_not_mapped(addr)
            }
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                for (what, v) in [
                    ("tcp timeout", tcp),
                    ("tcpfin timeout", tcpfin),
                    ("udp timeout", udp),
                ] {
                    if *v > MAX_TIMEOUT {
                        return Err(GrammarError::InvalidValue {
                            what,
                            value: v.to_string(),
                            reason: format!("must be 0..={MAX_TIMEOUT} seconds"),
                        });
                    }
                }
                Ok(())
            }
            Command::List(l) => {
                if let Some(svc) = &l.service {
                    svc.validate()?;
                    if l.connections {
                        return Err(GrammarError::Conflict("-c", "a virtual service"));
                    }
                }
                if l.connections {
                    for (on, name) in [
                        (l.stats, "--stats"),
                        (l.rate, "--rate"),
                        (l.thresholds, "--thresholds"),
                    ] {
                        if on {
                            return Err(GrammarError::Conflict("-c", name));
                        }
                    }
                }
                Ok(())
            }
            Command::StartDaemon(d) => d.validate(),
            Command::DryRun(inner) => match **inner {
                Command::DryRun(_) | Command::Help | Command::Version => {
                    Err(GrammarError::IllegalOption {
                        option: "--dry-run",
                        command: inner.option(),
                    })
                }
                _ => inner.validate(),
            },
            Command::Clear
            | Command::Zero(None)
            | Command::Timeouts { .. }
            | Command::Daemon { .. }
            | Command::Save { .. }
            | Command::Restore
            | Command::StopDaemon { .. }
            | Command::Version
            | Command::Help => Ok(()),
        }
    }
}

impl fmt::Display for Command {
    /// The canonical command line, numeric ([`crate::save_line`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::save_line(self, true))
    }
}

fn validate_service(svc: &SvcKey, opts: &ServiceOpts) -> Result<(), GrammarError> {
    svc.validate()?;
    if !xvs_sched::NAMES.contains(&opts.scheduler.as_str()) {
        return Err(GrammarError::UnknownScheduler(opts.scheduler.clone()));
    }
    if let Some(t) = opts.persistence {
        if t == 0 || t > MAX_TIMEOUT {
            return Err(GrammarError::InvalidValue {
                what: "persistence timeout",
                value: t.to_string(),
                reason: format!("must be 1..={MAX_TIMEOUT} seconds"),
            });
        }
    }
    if let Some(bits) = opts.netmask {
        let (min, full) = match svc.af() {
            Af::V4 => (0, 32),
            Af::V6 => (1, 128),
        };
        if bits < min || bits >= full {
            return Err(GrammarError::InvalidValue {
                what: "netmask",
                value: format!("/{bits}"),
                reason: if bits == full {
                    "the full-length mask is the default: leave the netmask out (None)".into()
                } else {
                    format!("a prefix here is {min}..={full} bits")
                },
            });
        }
    }
    if let SvcKey::Tuple { proto, port, .. } = svc {
        if *port == 0 && opts.persistence.is_none() {
            return Err(GrammarError::ZeroPortNotPersistent);
        }
        if opts.one_packet && *proto != Proto::Udp {
            return Err(GrammarError::OnePacketNotUdp);
        }
    }
    Ok(())
}

/// The family of a standard address.
pub(crate) fn af_of(a: &IpAddr) -> Af {
    match a {
        IpAddr::V4(_) => Af::V4,
        IpAddr::V6(_) => Af::V6,
    }
}

/// The director holds IPv4 addresses IPv4-mapped (`xvs_conntrack::Addr`), so
/// `::ffff:a.b.c.d` would alias `a.b.c.d`: refuse it and ask for the IPv4
/// form.
pub(crate) fn check_not_mapped(a: &IpAddr) -> Result<(), GrammarError> {
    if let IpAddr::V6(v6) = a {
        if v6.to_ipv4_mapped().is_some() {
            return Err(GrammarError::MappedAddress(v6.to_string()));
        }
    }
    Ok(())
}

/// An interface name as Linux takes it: 1..=15 bytes, no `/`, `:` or
/// white space.
pub(crate) fn check_iface(name: &str) -> Result<(), GrammarError> {
    let bad = |reason: &str| GrammarError::InvalidValue {
        what: "mcast-interface",
        value: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_IFACE_LEN {
        return Err(bad("an interface name is 1..=15 bytes"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
        || name == "."
        || name == ".."
    {
        return Err(bad("not a valid interface name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn svc_key_displays_as_ipvsadm_lists_it() {
        let t = SvcKey::Tuple {
            proto: Proto::Tcp,
            addr: v4("192.0.2.1"),
            port: 80,
        };
        assert_eq!(t.to_string(), "TCP  192.0.2.1:80");
        let u = SvcKey::Tuple {
            proto: Proto::Udp,
            addr: v6("2001:db8::1"),
            port: 53,
        };
        assert_eq!(u.to_string(), "UDP  [2001:db8::1]:53");
        let s = SvcKey::Tuple {
            proto: Proto::Sctp,
            addr: v4("192.0.2.1"),
            port: 5060,
        };
        assert_eq!(s.to_string(), "SCTP 192.0.2.1:5060");
        assert_eq!(
            SvcKey::Fwmark {
                mark: 5,
                af: Af::V4
            }
            .to_string(),
            "FWM  5"
        );
        assert_eq!(
            SvcKey::Fwmark {
                mark: 5,
                af: Af::V6
            }
            .to_string(),
            "FWM  5 IPv6"
        );
        assert_eq!(u.af(), Af::V6);
        assert_eq!(u.port(), 53);
        assert_eq!(
            SvcKey::Fwmark {
                mark: 5,
                af: Af::V6
            }
            .proto(),
            Proto::Tcp
        );
    }

    #[test]
    fn defaults_are_ipvsadm_defaults() {
        let o = ServiceOpts::default();
        assert_eq!(o.scheduler, "wlc");
        assert_eq!(o.persistence, None);
        let d = DestOpts::new(v4("10.0.0.2"), 80);
        assert_eq!((d.fwd, d.weight, d.upper, d.lower), (Fwd::Route, 1, 0, 0));
        assert_eq!((d.tun_type, d.tun_csum), (TunType::Ipip, TunCsum::NoCsum));
        assert!(ListOpts::default().sort);
        assert_eq!(DaemonOpts::new(SyncState::Master).mcast_iface, "eth0");
    }

    #[test]
    fn validate_catches_what_the_grammar_would() {
        let svc = SvcKey::Tuple {
            proto: Proto::Tcp,
            addr: v4("192.0.2.1"),
            port: 80,
        };
        let mut d = DestOpts::new(v4("10.0.0.2"), 8080);
        assert_eq!(
            d.validate(&svc),
            Err(GrammarError::DestPortMismatch {
                dest: 8080,
                svc: 80
            })
        );
        d.fwd = Fwd::Masq;
        assert_eq!(d.validate(&svc), Ok(()));
        d.lower = 5;
        assert_eq!(
            d.validate(&svc),
            Err(GrammarError::ThresholdOrder { upper: 0, lower: 5 })
        );
        d.lower = 0;
        d.tun_type = TunType::Gre;
        assert_eq!(d.validate(&svc), Err(GrammarError::TunnelWithoutIpip));
        d.fwd = Fwd::Tunnel;
        d.port = 80;
        d.tun_csum = TunCsum::RemCsum;
        assert!(matches!(
            d.validate(&svc),
            Err(GrammarError::IllegalTunnelOption { .. })
        ));
        d.tun_type = TunType::Gue { port: 0 };
        assert!(matches!(
            d.validate(&svc),
            Err(GrammarError::MissingTunnelOption { .. })
        ));
        let opts = ServiceOpts {
            scheduler: "bogus".into(),
            ..ServiceOpts::default()
        };
        assert_eq!(
            Command::AddService { svc, opts }.validate(),
            Err(GrammarError::UnknownScheduler("bogus".into()))
        );
        let mut opts = ServiceOpts {
            persistence: Some(60),
            netmask: Some(32),
            ..ServiceOpts::default()
        };
        let v4svc = Command::AddService {
            svc,
            opts: opts.clone(),
        };
        assert!(
            v4svc
                .validate()
                .unwrap_err()
                .to_string()
                .contains("full-length")
        );
        opts.netmask = Some(0);
        assert_eq!(
            Command::AddService {
                svc,
                opts: opts.clone()
            }
            .validate(),
            Ok(())
        );
        let fw6 = SvcKey::Fwmark {
            mark: 1,
            af: Af::V6,
        };
        assert!(
            Command::AddService {
                svc: fw6,
                opts: opts.clone()
            }
            .validate()
            .is_err()
        );
        opts.netmask = Some(127);
        assert_eq!(Command::AddService { svc: fw6, opts }.validate(), Ok(()));
        let nested = Command::DryRun(Box::new(Command::DryRun(Box::new(Command::Clear))));
        assert!(nested.validate().is_err());
        assert!(check_iface("eth0").is_ok());
        assert!(check_iface("a/b").is_err());
        assert!(check_iface("0123456789abcdef").is_err());
    }
}
