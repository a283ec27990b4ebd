//! The ipvsadm command line, parsed into a [`Command`].
//!
//! clap reads the words (short and long options, grouped short flags such
//! as `-Lnc`, `--opt=value`, `-p` with an optional value) and generates
//! `--help`; the rules of ipvsadm's `parse_options` and
//! `process_options` are then applied here: one command per line, which
//! options each command takes or needs (ipvsadm's `commands_v_options`
//! table), the defaults (`wlc`, `-g`, weight 1, `-p` = 300 s), the value
//! ranges, and the cross-option rules. Differences from ipvsadm, all on
//! purpose:
//! - the command may come anywhere (`-n -L` works; ipvsadm wants the
//!   command first);
//! - addresses are numeric: host names are refused with a clear error,
//!   never resolved; IPv4 is dotted-quad only (no `inet_aton` short
//!   forms); IPv4-mapped IPv6 addresses are refused;
//! - ports are numbers or names from `/etc/services` (read by xvs, see
//!   [`Services`]);
//! - `-M` must be a contiguous mask (`255.255.255.0`) for IPv4, a prefix
//!   length for IPv6; its family is the service's whatever the option
//!   order (ipvsadm reads it before or after `-6` differently);
//! - options that a command accepts but ignores in ipvsadm (`--syncid`
//!   with `-L`, `--sort` outside `-L`) are refused;
//! - the scheduler name is checked here (ipvsadm leaves it to the kernel);
//!   so are the kernel's rules on thresholds (`-y` not above `-x`);
//! - a `-m` real server with an explicit port 0 on a service with a port is
//!   refused (leave the port out to mean the service's);
//! - xvs extensions: `--dry-run` on any command, `--json` on `-L`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser};
use xvs_conntrack::{Af, Fwd, Proto};
use xvs_health::{Check, ServicePolicy, Timing};
use xvs_sched::SchedFlags;

use crate::cmd::{
    Command, DEFAULT_MCAST_IFACE, DEFAULT_PERSISTENCE, DaemonOpts, DestOpts, HealthCheck, ListOpts,
    MAX_SYNC_MAXLEN, MAX_THRESHOLD, MAX_TIMEOUT, MAX_WEIGHT, Pe, ServiceOpts, SvcKey, SyncState,
    TunCsum, TunType,
};
use crate::{GrammarError, Services};

const USAGE: &str = "\
xvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
       xvsadm -D virtual-service
       xvsadm -C
       xvsadm -R
       xvsadm -S [-n]
       xvsadm -a|e virtual-service -r server-address [options]
       xvsadm -d virtual-service -r server-address
       xvsadm -L|l [virtual-service] [options]
       xvsadm -Z [virtual-service]
       xvsadm --set tcp tcpfin udp
       xvsadm --start-daemon {master|backup} [daemon-options]
       xvsadm --stop-daemon {master|backup}
       xvsadm -h";

const AFTER_HELP: &str = "\
virtual-service is -t|-u|--sctp-service ADDRESS[:PORT] or -f FWMARK [-6].
An IPv6 address with a port is written [ADDRESS]:PORT. Addresses are numeric:
host names are not resolved. A port is a number or a name from /etc/services.
Without any argument, xvsadm lists the table (-L).";

/// The clap view of the ipvsadm options. Every option is optional to clap;
/// the command-dependent rules are checked after parsing.
#[derive(Parser, Debug)]
#[command(
    name = "xvsadm",
    bin_name = "xvsadm",
    about = "Administer the xvs director (ipvsadm's language).",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    override_usage = USAGE,
    after_help = AFTER_HELP,
    max_term_width = 100
)]
struct Cli {
    // ----- commands -----
    /// Add a virtual service.
    #[arg(short = 'A', long = "add-service", help_heading = "Commands")]
    add_service: bool,
    /// Edit a virtual service (all its settings).
    #[arg(short = 'E', long = "edit-service", help_heading = "Commands")]
    edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service", help_heading = "Commands")]
    delete_service: bool,
    /// Clear the whole table.
    #[arg(short = 'C', long = "clear", help_heading = "Commands")]
    clear: bool,
    /// Restore rules from standard input.
    #[arg(short = 'R', long = "restore", help_heading = "Commands")]
    restore: bool,
    /// Save rules to standard output.
    #[arg(short = 'S', long = "save", help_heading = "Commands")]
    save: bool,
    /// Add a real server.
    #[arg(short = 'a', long = "add-server", help_heading = "Commands")]
    add_server: bool,
    /// Edit a real server (all its settings).
    #[arg(short = 'e', long = "edit-server", help_heading = "Commands")]
    edit_server: bool,
    /// Delete a real server.
    #[arg(short = 'd', long = "delete-server", help_heading = "Commands")]
    delete_server: bool,
    /// List the table.
    #[arg(
        short = 'L',
        long = "list",
        visible_short_alias = 'l',
        help_heading = "Commands"
    )]
    list: bool,
    /// Zero the counters of a service, or of all.
    #[arg(short = 'Z', long = "zero", help_heading = "Commands")]
    zero: bool,
    /// Set connection timeouts in seconds: tcp tcpfin udp (0 = unchanged).
    #[arg(long = "set", help_heading = "Commands")]
    set: bool,
    /// Start the connection sync daemon.
    #[arg(
        long = "start-daemon",
        value_name = "master|backup",
        help_heading = "Commands"
    )]
    start_daemon: Option<String>,
    /// Stop the connection sync daemon.
    #[arg(
        long = "stop-daemon",
        value_name = "master|backup",
        help_heading = "Commands"
    )]
    stop_daemon: Option<String>,
    /// Display this help.
    #[arg(short = 'h', long = "help", help_heading = "Commands")]
    help: bool,
    /// Display the version.
    #[arg(short = 'v', long = "version", help_heading = "Commands")]
    version: bool,

    // ----- virtual service -----
    /// TCP service: ADDRESS[:PORT].
    #[arg(
        short = 't',
        long = "tcp-service",
        value_name = "service-address",
        allow_hyphen_values = true,
        help_heading = "Virtual service"
    )]
    tcp_service: Option<String>,
    /// UDP service: ADDRESS[:PORT].
    #[arg(
        short = 'u',
        long = "udp-service",
        value_name = "service-address",
        allow_hyphen_values = true,
        help_heading = "Virtual service"
    )]
    udp_service: Option<String>,
    /// SCTP service: ADDRESS[:PORT].
    #[arg(
        long = "sctp-service",
        value_name = "service-address",
        allow_hyphen_values = true,
        help_heading = "Virtual service"
    )]
    sctp_service: Option<String>,
    /// Firewall-mark service: an integer greater than zero.
    #[arg(
        short = 'f',
        long = "fwmark-service",
        value_name = "fwmark",
        allow_hyphen_values = true,
        help_heading = "Virtual service"
    )]
    fwmark_service: Option<String>,
    /// The fwmark service is IPv6.
    #[arg(short = '6', long = "ipv6", help_heading = "Virtual service")]
    ipv6: bool,

    // ----- service options -----
    /// Scheduler: rr wrr lc wlc (default) sed nq lblc lblcr dh sh fo ovf mh twos.
    #[arg(
        short = 's',
        long = "scheduler",
        value_name = "scheduler",
        allow_hyphen_values = true,
        help_heading = "Service options"
    )]
    scheduler: Option<String>,
    /// Persistent service; timeout in seconds, default 300.
    #[arg(
        short = 'p',
        long = "persistent",
        value_name = "timeout",
        num_args = 0..=1,
        help_heading = "Service options"
    )]
    persistent: Option<Option<String>>,
    /// Persistence granularity: IPv4 mask (255.255.255.0) or IPv6 prefix length.
    #[arg(
        short = 'M',
        long = "netmask",
        value_name = "netmask",
        allow_hyphen_values = true,
        help_heading = "Service options"
    )]
    netmask: Option<String>,
    /// Persistence engine: sip.
    #[arg(
        long = "pe",
        value_name = "engine",
        allow_hyphen_values = true,
        help_heading = "Service options"
    )]
    pe: Option<String>,
    /// Scheduler flags, comma-separated (flag-1..3, sh-fallback, sh-port, mh-fallback, mh-port).
    #[arg(
        short = 'b',
        long = "sched-flags",
        value_name = "flags",
        allow_hyphen_values = true,
        help_heading = "Service options"
    )]
    sched_flags: Option<String>,
    /// One-packet scheduling (UDP and fwmark services).
    #[arg(short = 'o', long = "ops", help_heading = "Service options")]
    ops: bool,

    // ----- real server options -----
    /// Real server: ADDRESS[:PORT] (port default: the service's).
    #[arg(
        short = 'r',
        long = "real-server",
        value_name = "server-address",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    real_server: Option<String>,
    /// Direct routing (default).
    #[arg(short = 'g', long = "gatewaying", help_heading = "Real server options")]
    gatewaying: bool,
    /// Tunnelling.
    #[arg(short = 'i', long = "ipip", help_heading = "Real server options")]
    ipip: bool,
    /// NAT.
    #[arg(
        short = 'm',
        long = "masquerading",
        help_heading = "Real server options"
    )]
    masquerading: bool,
    /// Weight 0..=65535, default 1 (0: quiescent).
    #[arg(
        short = 'w',
        long = "weight",
        value_name = "weight",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    weight: Option<String>,
    /// Upper connection threshold (0: none).
    #[arg(
        short = 'x',
        long = "u-threshold",
        value_name = "uthreshold",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    u_threshold: Option<String>,
    /// Lower connection threshold (0: none).
    #[arg(
        short = 'y',
        long = "l-threshold",
        value_name = "lthreshold",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    l_threshold: Option<String>,
    /// Tunnel type: ipip (default), gue or gre.
    #[arg(
        long = "tun-type",
        value_name = "type",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    tun_type: Option<String>,
    /// Tunnel destination port (gue).
    #[arg(
        long = "tun-port",
        value_name = "port",
        allow_hyphen_values = true,
        help_heading = "Real server options"
    )]
    tun_port: Option<String>,
    /// Tunnel without checksum (default; gue, gre).
    #[arg(long = "tun-nocsum", help_heading = "Real server options")]
    tun_nocsum: bool,
    /// Tunnel with checksum (gue, gre).
    #[arg(long = "tun-csum", help_heading = "Real server options")]
    tun_csum: bool,
    /// Tunnel with remote checksum offload (gue).
    #[arg(long = "tun-remcsum", help_heading = "Real server options")]
    tun_remcsum: bool,

    // ----- list options -----
    /// Numeric addresses and ports.
    #[arg(short = 'n', long = "numeric", help_heading = "List options")]
    numeric: bool,
    /// List connections.
    #[arg(short = 'c', long = "connection", help_heading = "List options")]
    connection: bool,
    /// List the timeouts (tcp tcpfin udp).
    #[arg(long = "timeout", help_heading = "List options")]
    timeout: bool,
    /// List the sync daemons.
    #[arg(long = "daemon", help_heading = "List options")]
    daemon: bool,
    /// Statistics.
    #[arg(long = "stats", help_heading = "List options")]
    stats: bool,
    /// Rates.
    #[arg(long = "rate", help_heading = "List options")]
    rate: bool,
    /// Exact numbers.
    #[arg(short = 'X', long = "exact", help_heading = "List options")]
    exact: bool,
    /// Thresholds.
    #[arg(long = "thresholds", help_heading = "List options")]
    thresholds: bool,
    /// Persistent connection counts.
    #[arg(long = "persistent-conn", help_heading = "List options")]
    persistent_conn: bool,
    /// Tunnel settings.
    #[arg(long = "tun-info", help_heading = "List options")]
    tun_info: bool,
    /// Do not sort.
    #[arg(long = "nosort", help_heading = "List options")]
    nosort: bool,
    /// Sort (the default; accepted for compatibility).
    #[arg(long = "sort", help_heading = "List options")]
    sort: bool,

    // ----- daemon options -----
    /// Sync daemon multicast interface (default eth0).
    #[arg(
        long = "mcast-interface",
        value_name = "interface",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    mcast_interface: Option<String>,
    /// Sync id 0..=255 (default 0: no filtering).
    #[arg(
        long = "syncid",
        value_name = "sid",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    syncid: Option<String>,
    /// Maximum sync message length.
    #[arg(
        long = "sync-maxlen",
        value_name = "length",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    sync_maxlen: Option<String>,
    /// Multicast group, IPv4 or IPv6 (default 224.0.0.81).
    #[arg(
        long = "mcast-group",
        value_name = "address",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    mcast_group: Option<String>,
    /// Multicast UDP port (default 8848).
    #[arg(
        long = "mcast-port",
        value_name = "port",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    mcast_port: Option<String>,
    /// Multicast TTL 1..=255 (default 1).
    #[arg(
        long = "mcast-ttl",
        value_name = "ttl",
        allow_hyphen_values = true,
        help_heading = "Daemon options"
    )]
    mcast_ttl: Option<String>,
    /// Unicast sync peer ADDR:PORT (repeat for several; instead of
    /// multicast).
    #[arg(
        long = "sync-peer",
        value_name = "addr:port",
        action = clap::ArgAction::Append,
        help_heading = "xvs extensions"
    )]
    sync_peer: Vec<String>,

    // ----- health checks (xvs) -----
    /// Health check of the real server: tcp, http:path=/,status=200,
    /// udp:payload=HEX, misc:cmd=COMMAND, or none (docs/health-checks.md).
    #[arg(
        long = "check",
        value_name = "check",
        allow_hyphen_values = true,
        help_heading = "Health checks (xvs)"
    )]
    check: Option<String>,
    /// When to check: interval=5s,timeout=3s,rise=2,fall=3[,alpha].
    #[arg(
        long = "check-timing",
        value_name = "timing",
        allow_hyphen_values = true,
        help_heading = "Health checks (xvs)"
    )]
    check_timing: Option<String>,
    /// What the service does with failed real servers:
    /// quorum=1,hysteresis=0[,sorry=ADDR:PORT][,inhibit].
    #[arg(
        long = "health",
        value_name = "policy",
        allow_hyphen_values = true,
        help_heading = "Health checks (xvs)"
    )]
    health: Option<String>,
    /// Dynamic feedback: the real server's load endpoint,
    /// [port=P,]path=/load[,host=H], or none.
    #[arg(
        long = "feedback",
        value_name = "endpoint",
        allow_hyphen_values = true,
        help_heading = "Health checks (xvs)"
    )]
    feedback: Option<String>,
    /// List each real server's health check and state (with -L).
    #[arg(long = "checks", help_heading = "Health checks (xvs)")]
    checks: bool,

    // ----- xvs extensions -----
    /// Check the command against the director, change nothing.
    #[arg(long = "dry-run", help_heading = "xvs extensions")]
    dry_run: bool,
    /// JSON output (with -L).
    #[arg(long = "json", help_heading = "xvs extensions")]
    json: bool,

    /// The three values of --set.
    // Not `allow_negative_numbers`: it would take `-6` for a value.
    #[arg(value_name = "tcp tcpfin udp")]
    values: Vec<String>,
}

/// The commands, in ipvsadm's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Clear,
    List,
    AddDest,
    DelDest,
    EditDest,
    Set,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    Help,
    Version,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "-A (--add-service)",
            Cmd::Edit => "-E (--edit-service)",
            Cmd::Del => "-D (--delete-service)",
            Cmd::Clear => "-C (--clear)",
            Cmd::List => "-L (--list)",
            Cmd::AddDest => "-a (--add-server)",
            Cmd::DelDest => "-d (--delete-server)",
            Cmd::EditDest => "-e (--edit-server)",
            Cmd::Set => "--set",
            Cmd::StartDaemon => "--start-daemon",
            Cmd::StopDaemon => "--stop-daemon",
            Cmd::Restore => "-R (--restore)",
            Cmd::Save => "-S (--save)",
            Cmd::Zero => "-Z (--zero)",
            Cmd::Help => "-h (--help)",
            Cmd::Version => "-v (--version)",
        }
    }

    /// The options the command takes, and those it needs (ipvsadm's
    /// `commands_v_options`, less the options ipvsadm accepts and ignores).
    /// `-6` goes wherever a service does; `--dry-run` with every command
    /// but `-h` and `-v`.
    fn options(self) -> (&'static [Opt], &'static [Opt]) {
        use Opt::*;
        match self {
            Cmd::Add | Cmd::Edit => (
                &[
                    Service, Scheduler, Persistent, Netmask, Pe, SchedFlags, Ops, Health,
                ],
                &[Service],
            ),
            Cmd::Del => (&[Service], &[Service]),
            Cmd::AddDest | Cmd::EditDest => (
                &[
                    Service,
                    Server,
                    Forward,
                    Weight,
                    UThreshold,
                    LThreshold,
                    TunType,
                    TunPort,
                    TunNoCsum,
                    TunCsum,
                    TunRemCsum,
                    Check,
                    CheckTiming,
                    Feedback,
                ],
                &[Service, Server],
            ),
            Cmd::DelDest => (&[Service, Server], &[Service, Server]),
            Cmd::List => (
                &[
                    Numeric,
                    Connection,
                    Service,
                    Timeout,
                    Daemon,
                    Stats,
                    Rate,
                    Exact,
                    Thresholds,
                    PersistentConn,
                    TunInfo,
                    NoSort,
                    Sort,
                    Json,
                    Checks,
                ],
                &[],
            ),
            Cmd::Zero => (&[Service], &[]),
            Cmd::Save => (&[Numeric], &[]),
            Cmd::StartDaemon => (
                &[
                    McastIface, SyncId, SyncMaxlen, McastGroup, McastPort, McastTtl, SyncPeer,
                ],
                &[],
            ),
            Cmd::StopDaemon => (&[SyncId], &[]),
            Cmd::Clear | Cmd::Set | Cmd::Restore | Cmd::Help | Cmd::Version => (&[], &[]),
        }
    }
}

/// The options other than commands, as ipvsadm groups them (the three
/// forwarding methods are one option, the four service kinds too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Ipv6,
    Scheduler,
    Persistent,
    Netmask,
    Pe,
    SchedFlags,
    Ops,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Exact,
    Thresholds,
    PersistentConn,
    TunInfo,
    NoSort,
    Sort,
    McastIface,
    SyncId,
    SyncMaxlen,
    McastGroup,
    McastPort,
    McastTtl,
    SyncPeer,
    Check,
    CheckTiming,
    Health,
    Checks,
    Feedback,
    Json,
    DryRun,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "-n (--numeric)",
            Opt::Connection => "-c (--connection)",
            Opt::Service => "a virtual service (-t|-u|--sctp-service|-f)",
            Opt::Ipv6 => "-6 (--ipv6)",
            Opt::Scheduler => "-s (--scheduler)",
            Opt::Persistent => "-p (--persistent)",
            Opt::Netmask => "-M (--netmask)",
            Opt::Pe => "--pe",
            Opt::SchedFlags => "-b (--sched-flags)",
            Opt::Ops => "-o (--ops)",
            Opt::Server => "a real server (-r)",
            Opt::Forward => "a forwarding method (-g|-i|-m)",
            Opt::Weight => "-w (--weight)",
            Opt::UThreshold => "-x (--u-threshold)",
            Opt::LThreshold => "-y (--l-threshold)",
            Opt::TunType => "--tun-type",
            Opt::TunPort => "--tun-port",
            Opt::TunNoCsum => "--tun-nocsum",
            Opt::TunCsum => "--tun-csum",
            Opt::TunRemCsum => "--tun-remcsum",
            Opt::Timeout => "--timeout",
            Opt::Daemon => "--daemon",
            Opt::Stats => "--stats",
            Opt::Rate => "--rate",
            Opt::Exact => "-X (--exact)",
            Opt::Thresholds => "--thresholds",
            Opt::PersistentConn => "--persistent-conn",
            Opt::TunInfo => "--tun-info",
            Opt::NoSort => "--nosort",
            Opt::Sort => "--sort",
            Opt::McastIface => "--mcast-interface",
            Opt::SyncId => "--syncid",
            Opt::SyncMaxlen => "--sync-maxlen",
            Opt::McastGroup => "--mcast-group",
            Opt::McastPort => "--mcast-port",
            Opt::McastTtl => "--mcast-ttl",
            Opt::SyncPeer => "--sync-peer",
            Opt::Check => "--check",
            Opt::CheckTiming => "--check-timing",
            Opt::Health => "--health",
            Opt::Checks => "--checks",
            Opt::Feedback => "--feedback",
            Opt::Json => "--json",
            Opt::DryRun => "--dry-run",
        }
    }
}

impl Cli {
    fn commands(&self) -> Vec<Cmd> {
        [
            (self.add_service, Cmd::Add),
            (self.edit_service, Cmd::Edit),
            (self.delete_service, Cmd::Del),
            (self.clear, Cmd::Clear),
            (self.list, Cmd::List),
            (self.add_server, Cmd::AddDest),
            (self.delete_server, Cmd::DelDest),
            (self.edit_server, Cmd::EditDest),
            (self.set, Cmd::Set),
            (self.start_daemon.is_some(), Cmd::StartDaemon),
            (self.stop_daemon.is_some(), Cmd::StopDaemon),
            (self.restore, Cmd::Restore),
            (self.save, Cmd::Save),
            (self.zero, Cmd::Zero),
            (self.help, Cmd::Help),
            (self.version, Cmd::Version),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
        .collect()
    }

    fn options(&self) -> Vec<Opt> {
        let service = self.tcp_service.is_some()
            || self.udp_service.is_some()
            || self.sctp_service.is_some()
            || self.fwmark_service.is_some();
        [
            (self.numeric, Opt::Numeric),
            (self.connection, Opt::Connection),
            (service, Opt::Service),
            (self.ipv6, Opt::Ipv6),
            (self.scheduler.is_some(), Opt::Scheduler),
            (self.persistent.is_some(), Opt::Persistent),
            (self.netmask.is_some(), Opt::Netmask),
            (self.pe.is_some(), Opt::Pe),
            (self.sched_flags.is_some(), Opt::SchedFlags),
            (self.ops, Opt::Ops),
            (self.real_server.is_some(), Opt::Server),
            (
                self.gatewaying || self.ipip || self.masquerading,
                Opt::Forward,
            ),
            (self.weight.is_some(), Opt::Weight),
            (self.u_threshold.is_some(), Opt::UThreshold),
            (self.l_threshold.is_some(), Opt::LThreshold),
            (self.tun_type.is_some(), Opt::TunType),
            (self.tun_port.is_some(), Opt::TunPort),
            (self.tun_nocsum, Opt::TunNoCsum),
            (self.tun_csum, Opt::TunCsum),
            (self.tun_remcsum, Opt::TunRemCsum),
            (self.timeout, Opt::Timeout),
            (self.daemon, Opt::Daemon),
            (self.stats, Opt::Stats),
            (self.rate, Opt::Rate),
            (self.exact, Opt::Exact),
            (self.thresholds, Opt::Thresholds),
            (self.persistent_conn, Opt::PersistentConn),
            (self.tun_info, Opt::TunInfo),
            (self.nosort, Opt::NoSort),
            (self.sort, Opt::Sort),
            (self.mcast_interface.is_some(), Opt::McastIface),
            (self.syncid.is_some(), Opt::SyncId),
            (self.sync_maxlen.is_some(), Opt::SyncMaxlen),
            (self.mcast_group.is_some(), Opt::McastGroup),
            (self.mcast_port.is_some(), Opt::McastPort),
            (self.mcast_ttl.is_some(), Opt::McastTtl),
            (!self.sync_peer.is_empty(), Opt::SyncPeer),
            (self.check.is_some(), Opt::Check),
            (self.check_timing.is_some(), Opt::CheckTiming),
            (self.health.is_some(), Opt::Health),
            (self.checks, Opt::Checks),
            (self.feedback.is_some(), Opt::Feedback),
            (self.json, Opt::Json),
            (self.dry_run, Opt::DryRun),
        ]
        .into_iter()
        .filter_map(|(on, o)| on.then_some(o))
        .collect()
    }
}

/// The clap command behind the grammar: what [`parse_args`] and restore
/// input accept.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The whole `xvsadm` command line, for its `--help`, man page and shell
/// completions: the grammar plus `--socket`, which the binary takes out
/// before the grammar reads the rest (a restore file names no socket).
pub fn xvsadm_command() -> clap::Command {
    command().arg(
        clap::Arg::new("socket")
            .long("socket")
            .value_name("path")
            .value_hint(clap::ValueHint::FilePath)
            .help(format!(
                "xvsd's control socket (default: $XVS_SOCKET, else {})",
                crate::client::DEFAULT_SOCKET
            ))
            .help_heading("xvs extensions"),
    )
}

/// The generated `--help` text.
pub fn help_text() -> String {
    xvsadm_command().render_help().to_string()
}

/// Parses one ipvsadm command line, with port names from the system's
/// `/etc/services` ([`Services::system`]).
///
/// `argv` holds the arguments only, without the program name (`argv[0]`):
/// `parse_args(&["-A", "-t", "192.0.2.1:80"])`. An empty `argv` is `-L`,
/// as a bare `ipvsadm` lists the table.
pub fn parse_args(argv: &[impl AsRef<str>]) -> Result<Command, GrammarError> {
    parse_args_with(argv, Services::system())
}

/// [`parse_args`] with the given port name table.
pub fn parse_args_with(
    argv: &[impl AsRef<str>],
    services: &Services,
) -> Result<Command, GrammarError> {
    if argv.is_empty() {
        return Ok(Command::List(ListOpts::default()));
    }
    let words = argv.iter().map(|a| a.as_ref());
    let matches = command().try_get_matches_from(words).map_err(from_clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(from_clap)?;
    build(&cli, services)
}

fn build(cli: &Cli, services: &Services) -> Result<Command, GrammarError> {
    let cmd = match cli.commands()[..] {
        [] => return Err(GrammarError::NoCommand),
        [c] => c,
        [a, b, ..] => return Err(GrammarError::MultipleCommands(a.name(), b.name())),
    };
    exclusive(&[
        (cli.tcp_service.is_some(), "-t (--tcp-service)"),
        (cli.udp_service.is_some(), "-u (--udp-service)"),
        (cli.sctp_service.is_some(), "--sctp-service"),
        (cli.fwmark_service.is_some(), "-f (--fwmark-service)"),
    ])?;
    exclusive(&[
        (cli.gatewaying, "-g (--gatewaying)"),
        (cli.ipip, "-i (--ipip)"),
        (cli.masquerading, "-m (--masquerading)"),
    ])?;
    exclusive(&[
        (cli.tun_nocsum, "--tun-nocsum"),
        (cli.tun_csum, "--tun-csum"),
        (cli.tun_remcsum, "--tun-remcsum"),
    ])?;

    let (allowed, required) = cmd.options();
    let given = cli.options();
    for &o in &given {
        let ok = allowed.contains(&o)
            || (o == Opt::Ipv6 && allowed.contains(&Opt::Service))
            || (o == Opt::DryRun && !matches!(cmd, Cmd::Help | Cmd::Version));
        if !ok {
            return Err(GrammarError::IllegalOption {
                option: o.name(),
                command: cmd.name(),
            });
        }
    }
    for &o in required {
        if !given.contains(&o) {
            return Err(GrammarError::MissingOption {
                option: o.name(),
                command: cmd.name(),
            });
        }
    }
    if cmd != Cmd::Set {
        if let Some(v) = cli.values.first() {
            return Err(GrammarError::UnexpectedArgument(v.clone()));
        }
    }
    if cli.ipv6 && cli.fwmark_service.is_none() {
        return Err(GrammarError::Ipv6WithoutFwmark);
    }

    let svc = service(cli, services)?;
    let need_svc = || {
        svc.ok_or(GrammarError::MissingOption {
            option: Opt::Service.name(),
            command: cmd.name(),
        })
    };
    let out = match cmd {
        Cmd::Add | Cmd::Edit => {
            let svc = need_svc()?;
            let opts = service_opts(cli, &svc)?;
            if cmd == Cmd::Add {
                Command::AddService { svc, opts }
            } else {
                Command::EditService { svc, opts }
            }
        }
        Cmd::Del => Command::DelService { svc: need_svc()? },
        Cmd::Clear => Command::Clear,
        Cmd::AddDest | Cmd::EditDest => {
            let svc = need_svc()?;
            let dest = dest_opts(cli, &svc, services)?;
            if cmd == Cmd::AddDest {
                Command::AddDest { svc, dest }
            } else {
                Command::EditDest { svc, dest }
            }
        }
        Cmd::DelDest => {
            let svc = need_svc()?;
            let r = cli.real_server.as_deref().unwrap_or_default();
            let (addr, port) = host_port("real server address", r, svc.proto(), services)?;
            Command::DelDest {
                svc,
                addr,
                port: port.unwrap_or(svc.port()),
            }
        }
        Cmd::Zero => Command::Zero(svc),
        Cmd::Set => {
            let [tcp, tcpfin, udp] = match &cli.values[..] {
                [a, b, c] => [a, b, c],
                [_, _, _, extra, ..] => {
                    return Err(GrammarError::UnexpectedArgument(extra.clone()));
                }
                _ => return Err(GrammarError::SetNeedsThree),
            };
            let t = |what, v: &str| number(what, v, 0, MAX_TIMEOUT.into(), " seconds");
            Command::SetTimeouts {
                tcp: t("tcp timeout", tcp)? as u32,
                tcpfin: t("tcpfin timeout", tcpfin)? as u32,
                udp: t("udp timeout", udp)? as u32,
            }
        }
        Cmd::List => list(cli, svc)?,
        Cmd::Save => Command::Save {
            numeric: cli.numeric,
        },
        Cmd::Restore => Command::Restore,
        Cmd::StartDaemon => {
            let state = sync_state(cli.start_daemon.as_deref().unwrap_or_default())?;
            Command::StartDaemon(daemon_opts(cli, state)?)
        }
        Cmd::StopDaemon => Command::StopDaemon {
            state: sync_state(cli.stop_daemon.as_deref().unwrap_or_default())?,
            syncid: syncid(cli)?,
        },
        Cmd::Help => Command::Help,
        Cmd::Version => Command::Version,
    };
    out.validate()?;
    Ok(if cli.dry_run {
        Command::DryRun(Box::new(out))
    } else {
        out
    })
}

/// At most one of the flags.
fn exclusive(flags: &[(bool, &'static str)]) -> Result<(), GrammarError> {
    let mut on = flags.iter().filter(|(f, _)| *f).map(|(_, n)| *n);
    match (on.next(), on.next()) {
        (Some(a), Some(b)) => Err(GrammarError::Conflict(a, b)),
        _ => Ok(()),
    }
}

fn service(cli: &Cli, services: &Services) -> Result<Option<SvcKey>, GrammarError> {
    let tuple = [
        (&cli.tcp_service, Proto::Tcp),
        (&cli.udp_service, Proto::Udp),
        (&cli.sctp_service, Proto::Sctp),
    ];
    for (arg, proto) in tuple {
        if let Some(s) = arg {
            let (addr, port) = host_port("virtual service address", s, proto, services)?;
            return Ok(Some(SvcKey::Tuple {
                proto,
                addr,
                port: port.unwrap_or(0),
            }));
        }
    }
    if let Some(f) = &cli.fwmark_service {
        let mark = number("fwmark", f, 1, u32::MAX.into(), "")? as u32;
        let af = if cli.ipv6 { Af::V6 } else { Af::V4 };
        return Ok(Some(SvcKey::Fwmark { mark, af }));
    }
    Ok(None)
}

fn service_opts(cli: &Cli, svc: &SvcKey) -> Result<ServiceOpts, GrammarError> {
    let mut o = ServiceOpts::default();
    if let Some(s) = &cli.scheduler {
        if !xvs_sched::NAMES.contains(&s.as_str()) {
            return Err(GrammarError::UnknownScheduler(s.clone()));
        }
        o.scheduler = s.clone();
    }
    if let Some(p) = &cli.persistent {
        o.persistence = Some(match p {
            None => DEFAULT_PERSISTENCE,
            Some(v) => number("persistence timeout", v, 1, MAX_TIMEOUT.into(), " seconds")? as u32,
        });
    }
    if let Some(m) = &cli.netmask {
        o.netmask = netmask(m, svc.af())?;
    }
    if let Some(pe) = &cli.pe {
        o.pe = Some(match pe.as_str() {
            "sip" => Pe::Sip,
            _ => {
                return Err(GrammarError::InvalidValue {
                    what: "persistence engine",
                    value: pe.clone(),
                    reason: "the only one is sip".into(),
                });
            }
        });
    }
    if let Some(b) = &cli.sched_flags {
        o.sched_flags = SchedFlags::parse_for(&o.scheduler, b).map_err(GrammarError::SchedFlags)?;
    }
    o.one_packet = cli.ops;
    if let Some(h) = &cli.health {
        o.health = Some(
            ServicePolicy::parse(h).map_err(|e| GrammarError::InvalidValue {
                what: "health policy",
                value: h.clone(),
                reason: e.to_string(),
            })?,
        );
    }
    Ok(o)
}

/// `--check` and `--check-timing` of a real server.
fn health_check(cli: &Cli) -> Result<Option<HealthCheck>, GrammarError> {
    let bad = |what: &'static str, v: &str, e: xvs_health::SpecError| GrammarError::InvalidValue {
        what,
        value: v.to_owned(),
        reason: e.to_string(),
    };
    let timing = match &cli.check_timing {
        Some(t) => Some(Timing::parse(t).map_err(|e| bad("check timing", t, e))?),
        None => None,
    };
    match cli.check.as_deref() {
        None if timing.is_some() => Err(GrammarError::InvalidValue {
            what: "check timing",
            value: cli.check_timing.clone().unwrap_or_default(),
            reason: "needs --check".into(),
        }),
        None => Ok(None),
        Some("none") if timing.is_some() => Err(GrammarError::InvalidValue {
            what: "check timing",
            value: cli.check_timing.clone().unwrap_or_default(),
            reason: "not with --check none".into(),
        }),
        Some("none") => Ok(Some(HealthCheck::Off)),
        Some(c) => Ok(Some(HealthCheck::On {
            check: Check::parse(c).map_err(|e| bad("check", c, e))?,
            timing: timing.unwrap_or_default(),
        })),
    }
}

fn dest_opts(cli: &Cli, svc: &SvcKey, services: &Services) -> Result<DestOpts, GrammarError> {
    let mut d = dest_base(cli, svc, services)?;
    d.check = health_check(cli)?;
    d.feedback = match cli.feedback.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(f) => Some(Some(xvs_health::Feedback::parse(f).map_err(|e| {
            GrammarError::InvalidValue {
                what: "feedback",
                value: f.to_owned(),
                reason: e.to_string(),
            }
        })?)),
    };
    Ok(d)
}

/// A real server's ipvsadm options.
fn dest_base(cli: &Cli, svc: &SvcKey, services: &Services) -> Result<DestOpts, GrammarError> {
    let r = cli.real_server.as_deref().unwrap_or_default();
    let (addr, port) = host_port("real server address", r, svc.proto(), services)?;
    let mut d = DestOpts::new(addr, port.unwrap_or(svc.port()));
    d.fwd = if cli.masquerading {
        Fwd::Masq
    } else if cli.ipip {
        Fwd::Tunnel
    } else {
        Fwd::Route
    };
    // As ipvsadm: direct routing and tunnelling keep the packet's port, so
    // the real server's port is the service's whatever -r said.
    if let SvcKey::Tuple { port, .. } = svc {
        if d.fwd != Fwd::Masq {
            d.port = *port;
        }
    }
    if let Some(w) = &cli.weight {
        d.weight = number("weight", w, 0, MAX_WEIGHT.into(), "")? as i32;
    }
    if let Some(x) = &cli.u_threshold {
        d.upper = number("upper threshold", x, 0, MAX_THRESHOLD.into(), "")? as u32;
    }
    if let Some(y) = &cli.l_threshold {
        d.lower = number("lower threshold", y, 0, MAX_THRESHOLD.into(), "")? as u32;
    }
    let tun_opts = [
        (cli.tun_port.is_some(), "--tun-port"),
        (cli.tun_nocsum, "--tun-nocsum"),
        (cli.tun_csum, "--tun-csum"),
        (cli.tun_remcsum, "--tun-remcsum"),
    ];
    if d.fwd != Fwd::Tunnel {
        if cli.tun_type.is_some() || tun_opts.iter().any(|(on, _)| *on) {
            return Err(GrammarError::TunnelWithoutIpip);
        }
        return Ok(d);
    }
    let tun = cli.tun_type.as_deref().unwrap_or("ipip");
    let (name, allowed): (&'static str, &[&str]) = match tun {
        "ipip" => ("ipip", &[]),
        "gue" => (
            "gue",
            &["--tun-port", "--tun-nocsum", "--tun-csum", "--tun-remcsum"],
        ),
        "gre" => ("gre", &["--tun-nocsum", "--tun-csum"]),
        _ => {
            return Err(GrammarError::InvalidValue {
                what: "tunnel type",
                value: tun.to_owned(),
                reason: "one of ipip, gue, gre".into(),
            });
        }
    };
    for (on, opt) in tun_opts {
        if on && !allowed.contains(&opt) {
            return Err(GrammarError::IllegalTunnelOption {
                option: opt,
                tun: name,
            });
        }
    }
    d.tun_type = match name {
        "gue" => {
            let Some(p) = &cli.tun_port else {
                return Err(GrammarError::MissingTunnelOption {
                    option: "--tun-port",
                    tun: "gue",
                });
            };
            TunType::Gue {
                port: number("tunnel port", p, 1, 65535, "")? as u16,
            }
        }
        "gre" => TunType::Gre,
        _ => TunType::Ipip,
    };
    d.tun_csum = if cli.tun_csum {
        TunCsum::Csum
    } else if cli.tun_remcsum {
        TunCsum::RemCsum
    } else {
        TunCsum::NoCsum
    };
    Ok(d)
}

fn list(cli: &Cli, svc: Option<SvcKey>) -> Result<Command, GrammarError> {
    exclusive(&[
        (cli.connection, Opt::Connection.name()),
        (svc.is_some(), Opt::Service.name()),
        (cli.timeout, Opt::Timeout.name()),
        (cli.daemon, Opt::Daemon.name()),
    ])?;
    let formats = [
        (cli.stats, Opt::Stats.name()),
        (cli.rate, Opt::Rate.name()),
        (cli.thresholds, Opt::Thresholds.name()),
        (cli.checks, Opt::Checks.name()),
    ];
    let other = [
        (cli.connection, Opt::Connection.name()),
        (cli.timeout, Opt::Timeout.name()),
        (cli.daemon, Opt::Daemon.name()),
    ];
    for (on, a) in other {
        for (fmt, b) in formats {
            if on && fmt {
                return Err(GrammarError::Conflict(a, b));
            }
        }
        if on && cli.persistent_conn && a != Opt::Connection.name() {
            return Err(GrammarError::Conflict(a, Opt::PersistentConn.name()));
        }
    }
    if cli.timeout {
        return Ok(Command::Timeouts { json: cli.json });
    }
    if cli.daemon {
        return Ok(Command::Daemon { json: cli.json });
    }
    Ok(Command::List(ListOpts {
        numeric: cli.numeric,
        connections: cli.connection,
        stats: cli.stats,
        rate: cli.rate,
        exact: cli.exact,
        thresholds: cli.thresholds,
        persistent_conn: cli.persistent_conn,
        tun_info: cli.tun_info,
        sort: !cli.nosort,
        service: svc,
        json: cli.json,
        checks: cli.checks,
    }))
}

fn sync_state(s: &str) -> Result<SyncState, GrammarError> {
    match s {
        "master" => Ok(SyncState::Master),
        "backup" => Ok(SyncState::Backup),
        _ => Err(GrammarError::InvalidValue {
            what: "sync daemon state",
            value: s.to_owned(),
            reason: "must be master or backup".into(),
        }),
    }
}

fn syncid(cli: &Cli) -> Result<u8, GrammarError> {
    match &cli.syncid {
        Some(s) => Ok(number("syncid", s, 0, 255, "")? as u8),
        None => Ok(0),
    }
}

fn daemon_opts(cli: &Cli, state: SyncState) -> Result<DaemonOpts, GrammarError> {
    let mut d = DaemonOpts::new(state);
    d.mcast_iface = cli
        .mcast_interface
        .clone()
        .unwrap_or_else(|| DEFAULT_MCAST_IFACE.to_owned());
    d.syncid = syncid(cli)?;
    if let Some(s) = &cli.sync_maxlen {
        d.sync_maxlen = Some(number("sync-maxlen", s, 1, MAX_SYNC_MAXLEN.into(), "")? as u16);
    }
    if let Some(g) = &cli.mcast_group {
        let bad = |reason: &str| GrammarError::InvalidValue {
            what: "mcast-group",
            value: g.clone(),
            reason: reason.to_owned(),
        };
        let addr = if g.contains(':') {
            IpAddr::V6(
                g.parse::<Ipv6Addr>()
                    .map_err(|_| bad("not an IPv6 address"))?,
            )
        } else {
            IpAddr::V4(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| bad("not an IPv4 address"))?,
            )
        };
        if !addr.is_multicast() {
            return Err(bad("not a multicast address"));
        }
        d.mcast_group = Some(addr);
    }
    if let Some(p) = &cli.mcast_port {
        d.mcast_port = Some(number("mcast-port", p, 1, 65535, "")? as u16);
    }
    if let Some(t) = &cli.mcast_ttl {
        d.mcast_ttl = Some(number("mcast-ttl", t, 1, 255, "")? as u8);
    }
    for p in &cli.sync_peer {
        let peer = p
            .parse::<SocketAddr>()
            .map_err(|_| GrammarError::InvalidValue {
                what: "sync-peer",
                value: p.clone(),
                reason: "not ADDR:PORT ([ADDR]:PORT for IPv6)".into(),
            })?;
        d.peers.push(peer);
    }
    Ok(d)
}

/// A decimal integer in `min..=max` (an optional sign, then digits).
fn number(
    what: &'static str,
    s: &str,
    min: i64,
    max: i64,
    unit: &str,
) -> Result<i64, GrammarError> {
    match s.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(GrammarError::InvalidValue {
            what,
            value: s.to_owned(),
            reason: format!("must be an integer in {min}..={max}{unit}"),
        }),
    }
}

/// `-M`: a contiguous dotted mask for IPv4, a prefix length 1..=128 for
/// IPv6. A full-length mask is the default and is stored as `None`.
fn netmask(s: &str, af: Af) -> Result<Option<u8>, GrammarError> {
    let bad = |reason: &str| GrammarError::InvalidValue {
        what: "netmask",
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (bits, full) = match af {
        Af::V4 => {
            let m =
                u32::from(s.parse::<Ipv4Addr>().map_err(|_| {
                    bad("an IPv4 service takes a dotted mask such as 255.255.255.0")
                })?);
            if m.leading_ones() + m.trailing_zeros() < 32 {
                return Err(bad("the mask's one bits must be contiguous"));
            }
            (m.leading_ones() as u8, 32)
        }
        Af::V6 => (
            number("netmask", s, 1, 128, " (an IPv6 prefix length)")? as u8,
            128,
        ),
    };
    Ok((bits != full).then_some(bits))
}

/// `ADDRESS[:PORT]`: dotted IPv4 with an optional port, bare IPv6 without
/// one, `[IPv6]` with or without `:PORT`. The port is a number or a name
/// from `services` for `proto`.
pub(crate) fn host_port(
    what: &'static str,
    s: &str,
    proto: Proto,
    services: &Services,
) -> Result<(IpAddr, Option<u16>), GrammarError> {
    let bad = |reason: &str| GrammarError::InvalidValue {
        what,
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("a number alone is not an address"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
        let addr = inner
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("brackets hold an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => {
                let p = after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("expected `:PORT` after `]`"))?;
                Some(port(what, s, p, proto, services)?)
            }
        };
        return Ok((IpAddr::V6(addr), port));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok((IpAddr::V6(a), None));
    }
    let (host, p) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if host.contains(':') {
        return Err(bad("an IPv6 address with a port is written [ADDRESS]:PORT"));
    }
    let addr = match host.parse::<Ipv4Addr>() {
        Ok(a) => a,
        Err(_) if is_host_name(host) => return Err(GrammarError::HostName(host.to_owned())),
        Err(_) => return Err(bad("not an IPv4 or IPv6 address")),
    };
    let port = p.map(|p| port(what, s, p, proto, services)).transpose()?;
    Ok((IpAddr::V4(addr), port))
}

fn is_host_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn port(
    what: &'static str,
    whole: &str,
    p: &str,
    proto: Proto,
    services: &Services,
) -> Result<u16, GrammarError> {
    let bad = |reason: String| GrammarError::InvalidValue {
        what,
        value: whole.to_owned(),
        reason,
    };
    if p.is_empty() {
        return Err(bad("empty port".into()));
    }
    if p.bytes().all(|b| b.is_ascii_digit()) {
        return p
            .parse::<u16>()
            .map_err(|_| bad(format!("port `{p}` is not in 0..=65535")));
    }
    services.port(p, proto).ok_or_else(|| {
        bad(format!(
            "port `{p}` is not a number nor a {} service name in /etc/services",
            proto_word(proto)
        ))
    })
}

fn proto_word(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
        Proto::Tcp | Proto::Any => "tcp",
    }
}

/// One line from a clap error: the option at fault, in ipvsadm's terms.
fn from_clap(e: clap::Error) -> GrammarError {
    let arg = || match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.split(' ').next().unwrap_or(s).to_owned()),
        _ => None,
    };
    let first_line = || {
        let text = e.render().to_string();
        let line = text.lines().next().unwrap_or_default();
        line.strip_prefix("error: ").unwrap_or(line).to_owned()
    };
    match (e.kind(), arg()) {
        (ErrorKind::UnknownArgument, Some(a)) if a.parse::<i64>().is_ok() => {
            GrammarError::InvalidValue {
                what: "argument",
                value: a,
                reason: "negative numbers are not accepted".into(),
            }
        }
        (ErrorKind::UnknownArgument, Some(a)) => GrammarError::UnknownOption(a),
        (ErrorKind::ArgumentConflict, Some(a)) => GrammarError::RepeatedOption(a),
        (
            ErrorKind::InvalidValue
            | ErrorKind::NoEquals
            | ErrorKind::WrongNumberOfValues
            | ErrorKind::TooFewValues,
            Some(a),
        ) => GrammarError::MissingValue(a),
        _ => GrammarError::Other(first_line()),
    }
}
