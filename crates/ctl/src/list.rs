//! `ipvsadm -L` output, byte for byte: the formats of ipvsadm 1.31's
//! `list_all`, `list_service`, `print_title`, `print_service_entry`,
//! `print_largenum`, `list_conn`/`print_conn`, `list_timeout` and
//! `list_daemon`, including their column widths, trailing blanks,
//! truncation of long IPv4 names (33 columns for services, 28 for real
//! servers) and K/M/G/T scaling of large counters.
//!
//! ```text
//! IP Virtual Server version 1.2.1 (size=4096)
//! Prot LocalAddress:Port Scheduler Flags
//!   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
//! TCP  192.0.2.1:80 wlc persistent 300 mask 255.255.255.0
//!   -> 10.0.0.2:80                  Route   1      0          0
//! ```
//!
//! Sorting is ipvsadm's (`ipvs_cmp_services`, `ipvs_cmp_dests` under
//! glibc's merge sort `qsort`), quirk included: addresses are compared by
//! the signed difference of their 32-bit words, so two IPv4 addresses more
//! than 2^31 apart sort "backwards" (`192.168.0.1` before `10.0.0.1`), as
//! they do in ipvsadm.
//!
//! One deliberate difference: without `-n`, ipvsadm prints host names from
//! reverse DNS where it finds one. xvs never resolves addresses, so
//! addresses are always numeric; ports are printed by name from
//! `/etc/services` ([`Services`]) as ipvsadm does.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use xvs_conntrack::{Af, Fwd, Proto};

use crate::Services;
use crate::cmd::{ListOpts, ServiceOpts, SvcKey, SyncState, TunCsum, TunType};
use crate::state::{Conn, Dest, Service, State, SyncDaemon, Timeouts};

/// Why a listing cannot be printed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// `-L -t ...` for a service that does not exist (ipvsadm's message).
    #[error("No such service")]
    NoSuchService,
}

/// What `ipvsadm -L` prints for `opts` (everything but `-c`, which is
/// [`list_conns`]): the header line (unless one service is asked for:
/// ipvsadm's `list_service` prints none), the column titles, then each
/// service and its real servers. With `opts.numeric` false, ports are
/// printed by name from `names`.
pub fn list_services(
    state: &State,
    opts: &ListOpts,
    names: &Services,
) -> Result<String, ListError> {
    let mut out = String::new();
    let fmt = Format::of(opts, names);
    match &opts.service {
        Some(key) => {
            let svc = state.service(key).ok_or(ListError::NoSuchService)?;
            fmt.title(&mut out);
            fmt.service(&mut out, svc);
        }
        None => {
            let _ = writeln!(
                out,
                "IP Virtual Server version {} (size={})",
                state.version, state.conn_tab_size
            );
            fmt.title(&mut out);
            for svc in sorted_services(&state.services, opts.sort) {
                fmt.service(&mut out, svc);
            }
        }
    }
    Ok(out)
}

/// The state `-L --json` prints: `state` with only the service asked for
/// (if any), services and real servers in listing order.
pub fn listed_state(state: &State, opts: &ListOpts) -> Result<State, ListError> {
    let chosen: Vec<&Service> = match &opts.service {
        Some(key) => vec![state.service(key).ok_or(ListError::NoSuchService)?],
        None => sorted_services(&state.services, opts.sort),
    };
    let services = chosen
        .into_iter()
        .map(|s| Service {
            dests: sorted_dests(&s.dests, opts.sort)
                .into_iter()
                .cloned()
                .collect(),
            ..s.clone()
        })
        .collect();
    Ok(State {
        services,
        ..state.clone()
    })
}

/// What `ipvsadm -L -c` prints for these connections (in the order
/// given, as ipvsadm prints `/proc/net/ip_vs_conn`): with
/// `opts.persistent_conn`, the persistence engine columns too.
pub fn list_conns(conns: &[Conn], opts: &ListOpts, names: &Services) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if opts.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    let names = (!opts.numeric).then_some(names);
    for c in conns {
        // ipvsadm looks port names up only for TCP, UDP and SCTP.
        let names = names.filter(|_| c.proto != Proto::Any);
        let cname = addr_port(c.client, c.client_port, c.proto, names);
        let vname = addr_port(c.vaddr, c.vport, c.proto, names);
        let dname = addr_port(c.daddr, c.dport, c.proto, names);
        // The kernel gives whole seconds left (truncated).
        let secs = c.expires_ms / 1000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let proto = c.proto.name();
        match (&c.pe, opts.persistent_conn) {
            (Some((pe_name, pe_data)), true) => {
                let _ = writeln!(
                    out,
                    "{proto:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname:<16} {pe_name:<18} {pe_data}",
                    c.state
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{proto:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname}",
                    c.state
                );
            }
        }
    }
    out
}

/// What `ipvsadm -L --timeout` prints.
pub fn list_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

/// What `ipvsadm -L --daemon` prints: one line per daemon, master first.
pub fn list_daemons(daemons: &[SyncDaemon]) -> String {
    let mut out = String::new();
    for state in [SyncState::Master, SyncState::Backup] {
        for d in daemons.iter().filter(|d| d.opts.state == state) {
            let o = &d.opts;
            let _ = write!(
                out,
                "{} sync daemon (mcast={}, syncid={}",
                state.name(),
                o.mcast_iface,
                o.syncid
            );
            if let Some(n) = o.sync_maxlen.filter(|n| *n != 0) {
                let _ = write!(out, ", maxlen={n}");
            }
            if let Some(g) = o.mcast_group {
                let _ = write!(out, ", group={g}");
            }
            if let Some(p) = o.mcast_port.filter(|p| *p != 0) {
                let _ = write!(out, ", port={p}");
            }
            if let Some(t) = o.mcast_ttl.filter(|t| *t != 0) {
                let _ = write!(out, ", ttl={t}");
            }
            for p in &o.peers {
                let _ = write!(out, ", peer={p}");
            }
            out.push_str(")\n");
        }
    }
    out
}

/// `value` as pretty JSON and a newline: the `--json` output.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising these plain data types cannot fail (no map with
    // non-string keys, no failing Serialize impl); say so if it ever does.
    let mut s = serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise: {e}\"}}"));
    s.push('\n');
    s
}

/// The services in listing order: ipvsadm's order when `sort`, else as
/// given.
pub fn sorted_services(services: &[Service], sort: bool) -> Vec<&Service> {
    let mut v: Vec<&Service> = services.iter().collect();
    if sort {
        merge_sort(&mut v, |a, b| cmp_services(&a.key, &b.key));
    }
    v
}

/// The real servers in listing order: ipvsadm's order when `sort`, else
/// as given.
pub fn sorted_dests(dests: &[Dest], sort: bool) -> Vec<&Dest> {
    let mut v: Vec<&Dest> = dests.iter().collect();
    if sort {
        merge_sort(&mut v, |a, b| {
            cmp_dests((a.opts.addr, a.opts.port), (b.opts.addr, b.opts.port))
        });
    }
    v
}

/// The address as the four 32-bit host-order words of the kernel's
/// `union nf_inet_addr` (an IPv4 address in the first word).
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// ipvsadm's address comparison: the signed difference of the words (all
/// four if the first operand is IPv6, else the first only).
fn cmp_addr(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if a.is_ipv6() { 4 } else { 1 };
    for i in 0..n {
        let r = wa[i].wrapping_sub(wb[i]) as i32;
        if r != 0 {
            return r;
        }
    }
    0
}

/// `AF_INET` / `AF_INET6` as the kernel numbers them.
fn af_number(af: Af) -> i32 {
    match af {
        Af::V4 => 2,
        Af::V6 => 10,
    }
}

/// `ipvs_cmp_services`: by fwmark, family, protocol, address, port. The
/// kernel stores fwmark services as TCP with address 0 and port 0.
fn cmp_services(a: &SvcKey, b: &SvcKey) -> i32 {
    let parts = |k: &SvcKey| match *k {
        SvcKey::Tuple { proto, addr, port } => (0u32, proto as i32, addr, port),
        SvcKey::Fwmark { mark, af } => {
            let zero = match af {
                Af::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Af::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            (mark, Proto::Tcp as i32, zero, 0)
        }
    };
    let (fa, pa, aa, porta) = parts(a);
    let (fb, pb, ab, portb) = parts(b);
    let r = fa.wrapping_sub(fb) as i32;
    if r != 0 {
        return r;
    }
    let r = af_number(a.af()) - af_number(b.af());
    if r != 0 {
        return r;
    }
    let r = pa - pb;
    if r != 0 {
        return r;
    }
    let r = cmp_addr(aa, ab);
    if r != 0 {
        return r;
    }
    i32::from(porta) - i32::from(portb)
}

/// `ipvs_cmp_dests`: by address, then port.
fn cmp_dests(a: (IpAddr, u16), b: (IpAddr, u16)) -> i32 {
    let r = cmp_addr(a.0, b.0);
    if r != 0 {
        return r;
    }
    i32::from(a.1) - i32::from(b.1)
}

/// glibc's `qsort` (its `msort`: top-down merge sort, left run first on
/// ties). ipvsadm's comparators are not a total order for addresses more
/// than 2^31 apart, so the algorithm decides the output; this is the one
/// ipvsadm runs under. Never panics, whatever `cmp` answers.
fn merge_sort<T: Copy>(v: &mut [T], cmp: impl Fn(&T, &T) -> i32 + Copy) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut v[..n1], cmp);
    merge_sort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]).cmp(&0) != Ordering::Greater {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

/// `addr:port` or `[addr]:port`, the port by name when `names` has one.
fn addr_port(addr: IpAddr, port: u16, proto: Proto, names: Option<&Services>) -> String {
    let p = names
        .and_then(|s| s.name(port, proto))
        .map_or_else(|| port.to_string(), str::to_owned);
    match addr {
        IpAddr::V4(a) => format!("{a}:{p}"),
        IpAddr::V6(a) => format!("[{a}]:{p}"),
    }
}

/// The first `n` bytes of `s` (C's `s[n] = '\0'`), on a character
/// boundary.
fn truncate(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Which columns a listing shows: ipvsadm's `FMT_*` precedence.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
    Checks,
    Plain,
}

struct Format<'a> {
    columns: Columns,
    exact: bool,
    sort: bool,
    names: Option<&'a Services>,
}

impl<'a> Format<'a> {
    fn of(opts: &ListOpts, names: &'a Services) -> Format<'a> {
        let columns = if opts.stats {
            Columns::Stats
        } else if opts.rate {
            Columns::Rate
        } else if opts.thresholds {
            Columns::Thresholds
        } else if opts.persistent_conn {
            Columns::PersistentConn
        } else if opts.tun_info {
            Columns::TunInfo
        } else if opts.checks {
            Columns::Checks
        } else {
            Columns::Plain
        };
        Format {
            columns,
            exact: opts.exact,
            sort: opts.sort,
            names: (!opts.numeric).then_some(names),
        }
    }

    fn title(&self, out: &mut String) {
        const PROT: &str = "Prot LocalAddress:Port";
        const REMOTE: &str = "  -> RemoteAddress:Port";
        let _ = match self.columns {
            Columns::Stats => writeln!(
                out,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            ),
            Columns::Rate => writeln!(
                out,
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            ),
            Columns::Thresholds => writeln!(
                out,
                "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}",
                "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
            ),
            Columns::PersistentConn => writeln!(
                out,
                "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            ),
            Columns::TunInfo => writeln!(
                out,
                "Prot LocalAddress:Port Scheduler Flags\n\
                 {REMOTE}           Forward TunnelInfo    Weight ActiveConn InActConn"
            ),
            Columns::Checks => writeln!(
                out,
                "Prot LocalAddress:Port Scheduler Flags\n\
                 {REMOTE}           Weight State   Check (last result)"
            ),
            Columns::Plain => writeln!(
                out,
                "Prot LocalAddress:Port Scheduler Flags\n\
                 {REMOTE}           Forward Weight ActiveConn InActConn"
            ),
        };
    }

    /// `print_largenum`.
    fn num(&self, out: &mut String, i: u64) {
        let _ = if self.exact {
            let s = i.to_string();
            let w = if s.len() <= 8 { 9 } else { s.len() + 1 };
            write!(out, "{s:>w$}")
        } else if i < 100_000_000 {
            write!(out, "{i:>9}")
        } else if i < 1_000_000_000 {
            write!(out, "{:>8}K", i / 1_000)
        } else if i < 100_000_000_000 {
            write!(out, "{:>8}M", i / 1_000_000)
        } else if i < 100_000_000_000_000 {
            write!(out, "{:>8}G", i / 1_000_000_000)
        } else {
            write!(out, "{:>8}T", i / 1_000_000_000_000)
        };
    }

    fn service(&self, out: &mut String, svc: &Service) {
        let name = match svc.key {
            SvcKey::Fwmark { mark, af: Af::V4 } => format!("FWM  {mark}"),
            SvcKey::Fwmark { mark, af: Af::V6 } => format!("FWM  {mark} IPv6"),
            SvcKey::Tuple { proto, addr, port } => {
                let s = format!(
                    "{:<4} {}",
                    proto.name(),
                    addr_port(addr, port, proto, self.names)
                );
                if addr.is_ipv6() { s } else { truncate(s, 33) }
            }
        };
        match self.columns {
            Columns::Stats => {
                let s = &svc.stats;
                let _ = write!(out, "{name:<33}");
                for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    self.num(out, v);
                }
            }
            Columns::Rate => {
                let r = &svc.rates;
                let _ = write!(out, "{name:<33}");
                for v in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                    self.num(out, v);
                }
            }
            _ => {
                let o = &svc.opts;
                let _ = write!(out, "{name} {}", o.scheduler);
                if let Some(flags) = sched_flags(o) {
                    let _ = write!(out, " ({flags})");
                }
                if let Some(t) = o.persistence {
                    let _ = write!(out, " persistent {t}");
                    if let Some(bits) = o.netmask {
                        let _ = match svc.key.af() {
                            Af::V4 => write!(out, " mask {}", v4_mask(bits)),
                            Af::V6 => write!(out, " mask {bits}"),
                        };
                    }
                    if let Some(pe) = o.pe {
                        let _ = write!(out, " pe {}", pe.name());
                    }
                }
                if o.one_packet {
                    out.push_str(" ops");
                }
            }
        }
        out.push('\n');
        for d in sorted_dests(&svc.dests, self.sort) {
            if d.removed && self.columns != Columns::Checks {
                continue;
            }
            self.dest(out, &svc.key, d);
        }
    }

    fn dest(&self, out: &mut String, svc: &SvcKey, d: &Dest) {
        let o = &d.opts;
        let name = addr_port(o.addr, o.port, svc.proto(), self.names);
        let name = if o.addr.is_ipv6() {
            name
        } else {
            truncate(name, 28)
        };
        let _ = match self.columns {
            Columns::Stats => {
                let _ = write!(out, "  -> {name:<28}");
                let s = &d.stats;
                for v in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    self.num(out, v);
                }
                writeln!(out)
            }
            Columns::Rate => {
                let r = &d.rates;
                let _ = write!(
                    out,
                    "  -> {name:<28} {:>8} {:>8} {:>8}",
                    r.cps, r.inpps, r.outpps
                );
                self.num(out, r.inbps);
                self.num(out, r.outbps);
                writeln!(out)
            }
            Columns::Thresholds => writeln!(
                out,
                "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
                o.upper, o.lower, d.active_conns, d.inactive_conns
            ),
            Columns::PersistentConn => writeln!(
                out,
                "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
                // ipvsadm prints the weight with %u.
                d.weight() as u32,
                d.persistent_conns,
                d.active_conns,
                d.inactive_conns
            ),
            Columns::TunInfo => writeln!(
                out,
                "  -> {name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                fwd_name(d),
                tun_info(d).unwrap_or_else(|| "n/a".to_owned()),
                d.weight(),
                d.active_conns,
                d.inactive_conns
            ),
            Columns::Checks => {
                let state = match (&d.health, d.sorry, d.removed) {
                    (_, true, _) => "sorry",
                    (_, _, true) => "removed",
                    (Some(h), _, _) if h.up => "up",
                    (Some(_), _, _) => "down",
                    (None, _, _) => "-",
                };
                let check = d.health.as_ref().map_or_else(
                    || "none".to_owned(),
                    |h| format!("{} ({})", h.check, h.last_detail),
                );
                writeln!(out, "  -> {name:<28} {:<6} {state:<7} {check}", d.weight())
            }
            Columns::Plain => writeln!(
                out,
                "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(d),
                d.weight(),
                d.active_conns,
                d.inactive_conns
            ),
        };
    }
}

/// The Forward column.
fn fwd_name(d: &Dest) -> &'static str {
    if d.local { "Local" } else { d.opts.fwd.name() }
}

/// `fwd_tun_info`: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` (at most 15
/// characters, as ipvsadm's 16-byte buffer), for tunnelled servers only.
fn tun_info(d: &Dest) -> Option<String> {
    if d.local || d.opts.fwd != Fwd::Tunnel {
        return None;
    }
    let flags = match d.opts.tun_csum {
        TunCsum::NoCsum => "-c",
        TunCsum::Csum => "+c",
        TunCsum::RemCsum => "r+c",
    };
    let s = match d.opts.tun_type {
        TunType::Ipip => "ipip".to_owned(),
        TunType::Gue { port } => format!("gue:{port}:{flags}"),
        TunType::Gre => format!("gre:{flags}"),
    };
    Some(truncate(s, 15))
}

/// `print_sched_flags`: the names ipvsadm gives the flag bits, per
/// scheduler; `None` when no bit is set (ipvsadm then prints no
/// parentheses; with only bits it has no name for, it prints `()`).
fn sched_flags(o: &ServiceOpts) -> Option<String> {
    use xvs_sched::SchedFlags;
    let f = o.sched_flags;
    if f.is_empty() {
        return None;
    }
    let has = |b: SchedFlags| f.contains(b);
    let names: Vec<&str> = match o.scheduler.as_str() {
        "sh" | "mh" => {
            let (fb, port) = if o.scheduler == "sh" {
                ("sh-fallback", "sh-port")
            } else {
                ("mh-fallback", "mh-port")
            };
            [(SchedFlags::SCHED1, fb), (SchedFlags::SCHED2, port)]
                .into_iter()
                .filter(|(b, _)| has(*b))
                .map(|(_, n)| n)
                .collect()
        }
        _ => [
            (SchedFlags::SCHED1, "flag-1"),
            (SchedFlags::SCHED2, "flag-2"),
            (SchedFlags::SCHED3, "flag-3"),
        ]
        .into_iter()
        .filter(|(b, _)| has(*b))
        .map(|(_, n)| n)
        .collect(),
    };
    Some(names.join(","))
}

/// An IPv4 prefix length as a dotted mask.
fn v4_mask(bits: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(bits.min(32)))
            .unwrap_or(0),
    )
}
