//! The director's state as the daemon reports it: what `xvsadm -L`, `-S`,
//! `-Lc`, `--timeout` and `--daemon` print, and what `--json` emits.
//!
//! The daemon fills these types from its configuration and its per-core
//! counters; [`crate::list`] formats them as ipvsadm does, and
//! [`State::to_commands`] turns them back into the commands that rebuild
//! the same table (`xvsadm -S`). The settings of services and real servers
//! are the command types themselves ([`ServiceOpts`], [`DestOpts`],
//! [`DaemonOpts`]), so what `-A`/`-a` set and what `-L` shows cannot drift
//! apart.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use xvs_conntrack::Proto;

use crate::cmd::{Command, DaemonOpts, DestOpts, ServiceOpts, SvcKey};

/// Version of IPVS whose behaviour (and `-L` header) the director follows.
pub const IPVS_VERSION: &str = "1.2.1";

/// The connection table size `ipvsadm -L` shows for a stock kernel
/// (`CONFIG_IP_VS_TAB_BITS=12`).
pub const DEFAULT_CONN_TAB_SIZE: u32 = 4096;

/// Cumulative traffic counters of a service or a real server, summed over
/// the worker cores (`ipvsadm -L --stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets from clients.
    pub inpkts: u64,
    /// Packets to clients.
    pub outpkts: u64,
    /// Bytes from clients.
    pub inbytes: u64,
    /// Bytes to clients.
    pub outbytes: u64,
}

/// Estimated rates, per second, as [`crate::rate::Estimator`] computes them
/// (`ipvsadm -L --rate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second from clients.
    pub inpps: u64,
    /// Packets per second to clients.
    pub outpps: u64,
    /// Bytes per second from clients.
    pub inbps: u64,
    /// Bytes per second to clients.
    pub outbps: u64,
}

/// A real server of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dest {
    /// Address, port, forwarding method, weight, thresholds, tunnel
    /// settings: as `-a`/`-e` set them.
    pub opts: DestOpts,
    /// The real server is the director itself (IPVS `LOCALNODE`): `-L`
    /// shows `Local` in the Forward column, `-S` saves `-g`.
    #[serde(default)]
    pub local: bool,
    /// Connections in an active state (TCP ESTABLISHED).
    pub active_conns: u32,
    /// Connections in any other state.
    pub inactive_conns: u32,
    /// Persistence templates pointing at this server.
    pub persistent_conns: u32,
    /// Traffic counters.
    pub stats: Stats,
    /// Traffic rates.
    pub rates: Rates,
    /// Its health check's state, when it has one (xvs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<xvs_health::TargetStatus>,
    /// A sorry server serving while the service lacks quorum (xvs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sorry: bool,
    /// Taken out by its health check (xvs): not scheduled, and left out
    /// of listings but `--checks` (keepalived deletes such a server).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    /// The weight in force when health checking changed it (xvs: 0 when
    /// inhibited, or a dynamic weight); `opts.weight` stays the configured
    /// one, which `-S` saves. Listings show this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_weight: Option<i32>,
}

impl Dest {
    /// The weight the data plane uses.
    pub fn weight(&self) -> i32 {
        self.live_weight.unwrap_or(self.opts.weight)
    }
}

/// A virtual service and its real servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service.
    pub key: SvcKey,
    /// Scheduler, flags, persistence timeout and netmask, persistence
    /// engine, one-packet scheduling: as `-A`/`-E` set them.
    pub opts: ServiceOpts,
    /// Traffic counters (of the whole service).
    pub stats: Stats,
    /// Traffic rates (of the whole service).
    pub rates: Rates,
    /// Real servers, in any order (listings sort them as ipvsadm does).
    pub dests: Vec<Dest>,
}

impl Service {
    /// A service with no real server and zero counters.
    pub fn new(key: SvcKey, opts: ServiceOpts) -> Service {
        Service {
            key,
            opts,
            stats: Stats::default(),
            rates: Rates::default(),
            dests: Vec::new(),
        }
    }
}

impl Dest {
    /// A real server with zero counters.
    pub fn new(opts: DestOpts) -> Dest {
        Dest {
            opts,
            local: false,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            stats: Stats::default(),
            rates: Rates::default(),
            health: None,
            sorry: false,
            removed: false,
            live_weight: None,
        }
    }
}

/// Connection timeouts in seconds (`ipvsadm --set`, `-L --timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Established TCP connections.
    pub tcp: u32,
    /// TCP connections after a FIN.
    pub tcpfin: u32,
    /// UDP "connections".
    pub udp: u32,
}

impl Default for Timeouts {
    /// IPVS's defaults: 900 s, 120 s, 300 s.
    fn default() -> Timeouts {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

/// A running connection sync daemon (`-L --daemon`).
///
/// The kernel reports every setting of a running daemon with its actual
/// value (the computed `sync_maxlen`, the default group 224.0.0.81, port
/// 8848, TTL 1) and ipvsadm prints what is not zero. To print the same
/// line, fill the `Option`s with the values in use; `None` is left out of
/// the line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    /// Role, interface, sync id, and the rest.
    pub opts: DaemonOpts,
    /// What it did since it started, by counter name (`--json` shows them;
    /// the names are listed in docs/sync-protocol.md).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
}

/// One entry of the connection table (`ipvsadm -L -c`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    /// Protocol: TCP, UDP, SCTP, or [`Proto::Any`] (printed `IP`) for the
    /// persistence templates of fwmark services.
    #[serde(with = "crate::serde_ext::proto")]
    pub proto: Proto,
    /// Client address.
    pub client: IpAddr,
    /// Client port (0 in templates).
    pub client_port: u16,
    /// Virtual address (0.0.0.0 in fwmark templates).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// State name as IPVS prints it: `ESTABLISHED`, `FIN_WAIT`,
    /// `SYN_RECV`, `TIME_WAIT`, `CLOSE`, `CLOSE_WAIT`, `LAST_ACK`,
    /// `LISTEN`, `SYNACK`, `UDP`, `NONE`, `ERR!`; templates `NONE` or
    /// `ASSURED`.
    pub state: String,
    /// Time to expiry in milliseconds (listed as MM:SS, truncated to whole
    /// seconds as the kernel does).
    pub expires_ms: u64,
    /// A persistence template rather than a connection.
    #[serde(default)]
    pub template: bool,
    /// Persistence engine name and data (`--persistent-conn` with `-c`),
    /// e.g. `("sip", "<call-id>")`.
    #[serde(default)]
    pub pe: Option<(String, String)>,
}

/// The data plane's own counters, summed over the worker cores: the
/// answer to [`crate::proto::Request::GetCounters`] (xvs; IPVS counts
/// little of this, and not by reason).
///
/// Every frame a worker receives is counted once in `rx` and once in
/// exactly one of `tx`, `replied`, `passed` and `dropped`, so
/// `rx = tx + Σ replied + Σ passed + Σ dropped`. The maps hold every
/// reason the daemon knows, zeros included, under the stable snake_case
/// names listed in `docs/hardening.md`. Counters only grow (`-Z` does not
/// reset them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Frames the workers received from their AF_XDP sockets.
    pub rx: u64,
    /// Frames forwarded (to a real server or, NAT replies, to a client).
    pub tx: u64,
    /// Frames answered with an ICMP or ICMPv6 error, by reason.
    pub replied: BTreeMap<String, u64>,
    /// Frames not the director's to handle, by reason (IPVS would accept
    /// them to the local stack; an AF_XDP worker cannot hand a frame back
    /// to the kernel, so they end here).
    pub passed: BTreeMap<String, u64>,
    /// Frames dropped, by reason: the parser's reasons (malformed frames)
    /// and the pipeline's (fragments, table full...).
    pub dropped: BTreeMap<String, u64>,
    /// The workers' I/O counters (`tx_ring_full`, `tx_no_socket`,
    /// `errors`...).
    pub io: BTreeMap<String, u64>,
    /// The XDP steering program's counters: `redirected` to a worker,
    /// `passed` to the kernel, `no_socket` (steered, but no socket on the
    /// queue). Empty when the program is not loaded.
    pub xdp: BTreeMap<String, u64>,
    /// The connection table.
    pub conns: TableCounters,
}

/// Occupancy and history of the connection table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounters {
    /// Entries now (connections and persistence templates).
    pub entries: u64,
    /// Most entries it holds (`xvsd --max-conns`).
    pub capacity: u64,
    /// Entries created since the start.
    pub created: u64,
    /// Entries expired since the start.
    pub expired: u64,
    /// Insertions refused because the table was full.
    pub refused_full: u64,
}

/// The director's configuration and counters: the answer to
/// [`crate::proto::Request::GetState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// IPVS version shown in the `-L` header ([`IPVS_VERSION`]).
    pub version: String,
    /// Connection table size shown in the `-L` header (`size=4096`).
    pub conn_tab_size: u32,
    /// Virtual services, in any order.
    pub services: Vec<Service>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Running sync daemons (master first, as the kernel lists them).
    pub daemons: Vec<SyncDaemon>,
}

impl Default for State {
    /// An empty director with the default header and timeouts.
    fn default() -> State {
        State {
            version: IPVS_VERSION.to_owned(),
            conn_tab_size: DEFAULT_CONN_TAB_SIZE,
            services: Vec::new(),
            timeouts: Timeouts::default(),
            daemons: Vec::new(),
        }
    }
}

impl State {
    /// The service with this key.
    pub fn service(&self, key: &SvcKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    /// The commands that rebuild this state from an empty director, in
    /// `ipvsadm -S` order (services sorted as ipvsadm sorts them, each
    /// followed by its sorted real servers), then what ipvsadm does not
    /// save: a `--set` line with the timeouts and a `--start-daemon` line
    /// per sync daemon. [`crate::save_text`] of these is `xvsadm -S`.
    pub fn to_commands(&self) -> Vec<Command> {
        let mut out = Vec::new();
        for svc in crate::list::sorted_services(&self.services, true) {
            out.push(Command::AddService {
                svc: svc.key,
                opts: svc.opts.clone(),
            });
            // A sorry server is the health policy's doing, not configured.
            for d in crate::list::sorted_dests(&svc.dests, true)
                .into_iter()
                .filter(|d| !d.sorry)
            {
                out.push(Command::AddDest {
                    svc: svc.key,
                    dest: d.opts.clone(),
                });
            }
        }
        let t = self.timeouts;
        out.push(Command::SetTimeouts {
            tcp: t.tcp,
            tcpfin: t.tcpfin,
            udp: t.udp,
        });
        for d in &self.daemons {
            out.push(Command::StartDaemon(d.opts.clone()));
        }
        out
    }
}
