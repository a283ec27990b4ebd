//! The control thread's state: the configuration, neighbour resolution,
//! the snapshot the workers read and the steering maps the XDP program
//! reads, kept in step.
//!
//! Every change goes through [`Control::apply`]: the batch runs on a clone
//! of the [`Director`] and replaces it only if every command succeeds; then
//! [`Control::publish`] resolves next hops, builds a new [`Snapshot`],
//! stores it for the workers (they pick it up at their next batch) and
//! makes the steering maps follow (new VIPs are steered only once the
//! snapshot that serves them is published; removed ones stop being steered
//! after it).
//!
//! [`Control::tick`] runs the slow path: connection expiry and neighbour
//! refresh, republishing when a next hop changed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use xvs_conntrack::{Af, ConnTable, DestId, Fwd, Proto};
use xvs_ctl::Command;
use xvs_ctl::rate::Estimator;
use xvs_ctl::state::{self, Rates, Stats};
use xvs_ctl::{SvcKey, SyncState};

use super::convert::{self, DaemonChange, SideEffects};
use super::health::Health;
use super::sync::{SyncDaemon, Taps};
use crate::director::{Director, HealthMark, Reach};
use crate::netlink::{Link, Netlink, NextHopResolver, Resolution};
use crate::pipeline::{DestTotals, DropReason, PassReason, ReplyReason, SyncTap, WorkerStats};
use crate::service::{Gateway, Iface, Snapshot, SvcAddr, af_index};
use crate::worker::{Clock, IoStats};
use crate::xdp::{SteerKey, Steering};

/// A table this full (7/8) is under pressure (a SYN flood, most likely):
/// half-open connections get [`PRESSURE_SYN_RECV_S`] instead of their
/// normal SYN_RECV timeout, until it is below 3/4 again.
const PRESSURE_ON: (usize, usize) = (7, 8);
const PRESSURE_OFF: (usize, usize) = (3, 4);
/// SYN_RECV timeout under pressure, seconds (IPVS 2.4's value under attack;
/// the normal one is 60 s as IPVS's).
const PRESSURE_SYN_RECV_S: u32 = 10;

/// Entries examined per shard per expiry pass.
const EXPIRE_BUDGET: usize = 4096;
/// How often next hops are re-checked when all are resolved.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How often while one is still being resolved.
const REFRESH_PENDING: Duration = Duration::from_millis(50);

/// Where the control thread keeps everything.
#[derive(Debug)]
pub struct Control {
    director: Director,
    conns: Arc<ConnTable>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    steering: Option<Steering>,
    nl: Netlink,
    resolver: NextHopResolver,
    /// The director's interfaces, in the order of the snapshot's.
    links: Vec<Link>,
    clock: Clock,
    workers: Vec<Arc<WorkerStats>>,
    /// Every worker's I/O counters.
    io: Vec<Arc<IoStats>>,
    /// Per destination slot: the totals at the last `-Z`.
    zeroed: Vec<DestTotals>,
    /// Rate estimators per real server (by slot) and per service (by index).
    dest_rates: HashMap<DestId, Estimator>,
    svc_rates: HashMap<u32, Estimator>,
    last_sample: Option<u64>,
    last_refresh: Instant,
    pending: bool,
    /// Gateways of the default routes (IPv4, IPv6) at the last refresh.
    gateways: [Option<IpAddr>; 2],
    /// The connection-sync secret (`xvsd --sync-key-file`).
    sync_key: Option<xvs_sync::Key>,
    /// Every worker's sync queue.
    taps: Taps,
    /// Running sync daemons (at most one master and one backup).
    daemons: Vec<SyncDaemon>,
    /// Health checks and what they did.
    health: Health,
    /// Under table pressure: the normal SYN_RECV timeout (seconds) to
    /// restore when it ends.
    pressure: Option<u32>,
}

impl Control {
    /// Control over `links` (the director's interfaces, in order).
    pub fn new(
        director: Director,
        conns: Arc<ConnTable>,
        snapshot: Arc<ArcSwap<Snapshot>>,
        steering: Option<Steering>,
        nl: Netlink,
        links: Vec<Link>,
        clock: Clock,
    ) -> Control {
        let slots = conns.dests().len();
        Control {
            director,
            conns,
            snapshot,
            steering,
            nl,
            resolver: NextHopResolver::new(),
            links,
            clock,
            workers: Vec::new(),
            io: Vec::new(),
            zeroed: vec![DestTotals::default(); slots],
            dest_rates: HashMap::new(),
            svc_rates: HashMap::new(),
            last_sample: None,
            last_refresh: Instant::now(),
            pending: false,
            gateways: [None; 2],
            sync_key: None,
            taps: Taps::default(),
            daemons: Vec::new(),
            health: Health::default(),
            pressure: None,
        }
    }

    /// Sets the connection-sync secret; without one, sync daemons are
    /// refused.
    pub fn set_sync_key(&mut self, key: xvs_sync::Key) {
        self.sync_key = Some(key);
    }

    /// Adds a worker's counters to the statistics and its sync queue to the
    /// master's sources.
    pub fn add_worker(&mut self, stats: Arc<WorkerStats>, io: Arc<IoStats>, tap: Arc<SyncTap>) {
        self.workers.push(stats);
        self.io.push(io);
        tap.set_on(self.daemons.iter().any(|d| d.state() == SyncState::Master));
        self.taps.lock().push(tap);
    }

    /// The running sync daemons, as `-L --daemon` lists them.
    pub fn daemons(&self) -> Vec<state::SyncDaemon> {
        self.daemons.iter().map(SyncDaemon::listing).collect()
    }

    /// The configuration.
    pub fn director(&self) -> &Director {
        &self.director
    }

    /// The connection table.
    pub fn conns(&self) -> &Arc<ConnTable> {
        &self.conns
    }

    /// The steering program, when loaded.
    pub fn steering(&self) -> Option<&Steering> {
        self.steering.as_ref()
    }

    /// The steering program, writable (socket registration).
    pub fn steering_mut(&mut self) -> Option<&mut Steering> {
        self.steering.as_mut()
    }

    /// Hands the loaded steering program over; the next publication fills
    /// its maps.
    pub fn set_steering(&mut self, steering: Steering) {
        self.steering = Some(steering);
    }

    /// The clock of the connection table.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Next-hop resolution of every target.
    pub fn resolutions(&self) -> impl Iterator<Item = (IpAddr, &Resolution)> {
        self.resolver.iter()
    }

    /// Applies a batch of changes, all or nothing: on the first failure
    /// nothing changed and the error names the command (0-based) and why.
    /// With `dry_run` the batch is checked against the current state and
    /// dropped. A committed batch is published.
    pub fn apply(&mut self, cmds: &[Command], dry_run: bool) -> Result<(), (usize, String)> {
        let dry = dry_run || cmds.iter().any(|c| matches!(c, Command::DryRun(_)));
        let mut next = self.director.clone();
        let mut fx = SideEffects::default();
        let mut daemon_cmd = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            convert::apply(&mut next, c, &mut fx).map_err(|e| (i, e))?;
            daemon_cmd.resize(fx.daemons.len(), i);
        }
        let started = self.daemon_changes(&fx.daemons, &daemon_cmd, dry)?;
        if dry {
            return Ok(());
        }
        // Every change is valid and the new daemons run: commit.
        for (d, change) in started.into_iter().zip(&fx.daemons) {
            match (d, change) {
                (Some(d), _) => self.daemons.push(d),
                (None, DaemonChange::Stop(st)) => {
                    if let Some(i) = self.daemons.iter().position(|d| d.state() == *st) {
                        self.daemons.remove(i).stop();
                    }
                }
                (None, DaemonChange::Start(_)) => {}
            }
        }
        let master = self.daemons.iter().any(|d| d.state() == SyncState::Master);
        for t in self.taps.lock().iter() {
            t.set_on(master);
        }
        self.director = next;
        self.health.configure(&self.director);
        self.health.update(&mut self.director);
        if let Some((tcp, fin, udp)) = fx.timeouts {
            self.conns.timeouts.set(tcp, fin, udp);
        }
        if let Some(which) = fx.zero {
            self.zero(which.as_ref().map(convert::svc_addr));
        }
        self.publish();
        Ok(())
    }

    /// Checks a batch's daemon changes against the running daemons (one
    /// master and one backup at most; a stop needs a running daemon) and
    /// starts the new ones (not with `dry`): on any failure those started
    /// are stopped again and the error names its command.
    fn daemon_changes(
        &self,
        changes: &[DaemonChange],
        index: &[usize],
        dry: bool,
    ) -> Result<Vec<Option<SyncDaemon>>, (usize, String)> {
        let mut running: Vec<SyncState> = self.daemons.iter().map(SyncDaemon::state).collect();
        let mut started = Vec::new();
        for (c, &i) in changes.iter().zip(index) {
            match c {
                DaemonChange::Start(o) => {
                    if running.contains(&o.state) {
                        return Err((
                            i,
                            format!("a {} sync daemon is already running", o.state.name()),
                        ));
                    }
                    let Some(key) = &self.sync_key else {
                        return Err((
                            i,
                            "connection sync needs a shared secret: start xvsd with --sync-key-file"
                                .into(),
                        ));
                    };
                    running.push(o.state);
                    if dry {
                        started.push(None);
                        continue;
                    }
                    let d = SyncDaemon::start(
                        o,
                        key,
                        Arc::clone(&self.conns),
                        Arc::clone(&self.snapshot),
                        Arc::clone(&self.taps),
                        self.clock,
                    )
                    .map_err(|e| (i, e))?;
                    started.push(Some(d));
                }
                DaemonChange::Stop(st) => {
                    let Some(at) = running.iter().position(|r| r == st) else {
                        return Err((i, format!("no {} sync daemon is running", st.name())));
                    };
                    running.remove(at);
                    started.push(None);
                }
            }
        }
        Ok(started)
    }

    /// `-Z`: remembers the current totals of the service's (or every)
    /// real servers so listings count from zero.
    fn zero(&mut self, svc: Option<SvcAddr>) {
        let ids: Vec<_> = self
            .director
            .services()
            .filter(|(a, _, _)| svc.is_none_or(|s| **a == s))
            .flat_map(|(_, _, ds)| ds.iter().map(|(id, _)| *id))
            .collect();
        for id in ids {
            let now = self.raw_totals(id);
            if let Some(z) = self.zeroed.get_mut(id as usize) {
                *z = now;
            }
        }
        let now = self.clock.now_ms();
        for e in self.dest_rates.values_mut() {
            e.zero(Stats::default(), now);
        }
        for e in self.svc_rates.values_mut() {
            e.zero(Stats::default(), now);
        }
        self.last_sample = None;
        self.sample_rates();
    }

    fn stats_of(t: &DestTotals) -> Stats {
        Stats {
            conns: t.conns,
            inpkts: t.in_pkts,
            outpkts: t.out_pkts,
            inbytes: t.in_bytes,
            outbytes: t.out_bytes,
        }
    }

    /// Per service (index) and real server (slot): counters since `-Z`.
    fn all_stats(&self) -> (HashMap<u32, Stats>, HashMap<DestId, Stats>) {
        let mut svcs = HashMap::new();
        let mut dests = HashMap::new();
        for (addr, _, ds) in self.director.services() {
            let Some(index) = self.director.service_index(addr) else {
                continue;
            };
            let mut sum = Stats::default();
            for (id, _) in ds.iter().chain(&self.director.sorry_of(addr)) {
                let st = Self::stats_of(&self.dest_totals(*id));
                sum.conns += st.conns;
                sum.inpkts += st.inpkts;
                sum.outpkts += st.outpkts;
                sum.inbytes += st.inbytes;
                sum.outbytes += st.outbytes;
                dests.insert(*id, st);
            }
            svcs.insert(index, sum);
        }
        (svcs, dests)
    }

    /// Feeds the rate estimators (they sample every 2 s, as IPVS's) and
    /// forgets those of services and servers that are gone.
    fn sample_rates(&mut self) {
        let now = self.clock.now_ms();
        if self
            .last_sample
            .is_some_and(|t| now.saturating_sub(t) < xvs_ctl::rate::PERIOD_MS)
        {
            return;
        }
        self.last_sample = Some(now);
        let (svcs, dests) = self.all_stats();
        self.svc_rates.retain(|k, _| svcs.contains_key(k));
        self.dest_rates.retain(|k, _| dests.contains_key(k));
        for (k, st) in svcs {
            self.svc_rates
                .entry(k)
                .and_modify(|e| {
                    e.update(st, now);
                })
                .or_insert_with(|| Estimator::new(st, now));
        }
        for (k, st) in dests {
            self.dest_rates
                .entry(k)
                .and_modify(|e| {
                    e.update(st, now);
                })
                .or_insert_with(|| Estimator::new(st, now));
        }
    }

    /// The director as `xvsadm -L` shows it: every service (or only
    /// `only`), its real servers, counters, rates, connection counts.
    pub fn state(&self, only: Option<&SvcKey>) -> Result<state::State, String> {
        let (svcs, dests) = self.all_stats();
        let table = self.conns.dests();
        let mut out = state::State {
            conn_tab_size: self.conns.capacity().min(u32::MAX as usize) as u32,
            timeouts: self.timeouts(),
            ..state::State::default()
        };
        let health: HashMap<(String, std::net::SocketAddr), xvs_health::TargetStatus> = self
            .health
            .status()
            .into_iter()
            .map(|s| ((s.key.service.clone(), s.key.addr), s))
            .collect();
        for (addr, conf, ds) in self.director.services() {
            let key = convert::svc_key(addr);
            if only.is_some_and(|k| *k != key) {
                continue;
            }
            let index = self.director.service_index(addr).unwrap_or(u32::MAX);
            let mut svc = state::Service::new(key, convert::service_opts(&key, conf));
            svc.opts.health = self.director.policy(addr).cloned();
            let sorry = self.director.sorry_of(addr);
            svc.stats = svcs.get(&index).copied().unwrap_or_default();
            svc.rates = self
                .svc_rates
                .get(&index)
                .map_or(Rates::default(), Estimator::rates);
            for (id, dc) in ds.iter().chain(&sorry) {
                let slot = table.get(*id);
                let mark = self.director.mark_of(addr, *id);
                let mut d = state::Dest::new(convert::configured_dest(&self.director, addr, dc));
                if let Some(HealthMark::Weight(w)) = mark {
                    d.live_weight = Some(w);
                }
                d.removed = mark == Some(HealthMark::Removed);
                d.sorry = sorry.is_some_and(|(s, _)| s == *id);
                d.health = health
                    .get(&(
                        key.to_string(),
                        std::net::SocketAddr::new(dc.addr.to_ip(), dc.port),
                    ))
                    .cloned();
                d.active_conns = slot.active();
                d.inactive_conns = slot.inactive();
                d.persistent_conns = slot.persistent();
                d.stats = dests.get(id).copied().unwrap_or_default();
                d.rates = self
                    .dest_rates
                    .get(id)
                    .map_or(Rates::default(), Estimator::rates);
                svc.dests.push(d);
            }
            out.services.push(svc);
        }
        if only.is_some() && out.services.is_empty() {
            return Err(crate::director::DirectorError::NoService.to_string());
        }
        Ok(out)
    }

    /// `--set` values in use.
    pub fn timeouts(&self) -> state::Timeouts {
        let (tcp, tcpfin, udp) = self.conns.timeouts.get();
        state::Timeouts { tcp, tcpfin, udp }
    }

    /// The connection table as `xvsadm -L -c` lists it.
    pub fn connections(&self) -> Vec<state::Conn> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        self.conns.for_each(256, |_, c| {
            let proto = c.proto();
            let state = if c.is_template() {
                "NONE".to_owned()
            } else if proto == Proto::Tcp {
                c.tcp_state().name().to_owned()
            } else {
                proto.name().to_owned()
            };
            out.push(state::Conn {
                proto,
                client: c.caddr.to_ip(),
                client_port: c.cport,
                vaddr: c.vaddr.to_ip(),
                vport: c.vport,
                daddr: c.daddr.to_ip(),
                dport: c.dport,
                state,
                expires_ms: c.expires.saturating_sub(now),
                template: c.is_template(),
                pe: None,
            });
        });
        out
    }

    fn raw_totals(&self, id: xvs_conntrack::DestId) -> DestTotals {
        let mut t = DestTotals::default();
        for w in &self.workers {
            if let Some(c) = w.dest(id) {
                t.add(c);
            }
        }
        t
    }

    /// A real server's counters summed over the workers, since the last
    /// `-Z`.
    pub fn dest_totals(&self, id: xvs_conntrack::DestId) -> DestTotals {
        let t = self.raw_totals(id);
        let z = self.zeroed.get(id as usize).copied().unwrap_or_default();
        DestTotals {
            conns: t.conns.saturating_sub(z.conns),
            in_pkts: t.in_pkts.saturating_sub(z.in_pkts),
            in_bytes: t.in_bytes.saturating_sub(z.in_bytes),
            out_pkts: t.out_pkts.saturating_sub(z.out_pkts),
            out_bytes: t.out_bytes.saturating_sub(z.out_bytes),
        }
    }

    /// Every worker's pipeline counters.
    pub fn workers(&self) -> &[Arc<WorkerStats>] {
        &self.workers
    }

    /// Every worker's I/O counters.
    pub fn io_stats(&self) -> &[Arc<IoStats>] {
        &self.io
    }

    /// The data plane's counters, summed over the workers, with the XDP
    /// program's and the connection table's (`Request::GetCounters`).
    pub fn counters(&self) -> state::Counters {
        let sum = |f: &dyn Fn(&WorkerStats) -> u64| self.workers.iter().map(|w| f(w)).sum();
        let io = |f: &dyn Fn(&IoStats) -> u64| self.io.iter().map(|i| f(i)).sum();
        let xdp = match self.steering.as_ref().map(Steering::stats) {
            Some(Ok(x)) => named([
                ("redirected", x.redirected),
                ("passed", x.passed),
                ("no_socket", x.no_socket),
            ]),
            Some(Err(e)) => {
                eprintln!("xvsd: reading the XDP program's counters: {e}");
                named([])
            }
            None => named([]),
        };
        let (created, expired, refused_full) = self.conns.stats();
        state::Counters {
            rx: sum(&|w| w.rx.get()),
            tx: sum(&|w| w.tx.get()),
            replied: named(
                ReplyReason::ALL
                    .iter()
                    .map(|&r| (r.as_str(), sum(&|w| w.replied(r)))),
            ),
            passed: named(
                PassReason::ALL
                    .iter()
                    .map(|&r| (r.as_str(), sum(&|w| w.passed(r)))),
            ),
            dropped: named(
                (0..DropReason::COUNT)
                    .filter_map(DropReason::from_index)
                    .map(|r| (r.as_str(), sum(&|w| w.dropped(r)))),
            ),
            io: named([
                ("busy_rounds", io(&|i| i.busy_rounds.get())),
                ("sleeps", io(&|i| i.sleeps.get())),
                ("tx_ring_full", io(&|i| i.tx_ring_full.get())),
                ("tx_no_socket", io(&|i| i.tx_no_socket.get())),
                ("errors", io(&|i| i.errors.get())),
            ]),
            xdp,
            conns: state::TableCounters {
                entries: self.conns.len() as u64,
                capacity: self.conns.capacity() as u64,
                created,
                expired,
                refused_full,
            },
        }
    }

    /// Resolves next hops, builds and stores a new snapshot, and makes the
    /// steering maps follow. Netlink trouble is logged and the previous
    /// resolutions are used.
    pub fn publish(&mut self) {
        self.refresh_next_hops();
        let snap = self.build();
        self.snapshot.store(Arc::new(snap));
        self.sync_steering();
    }

    /// The slow path, called every few tens of milliseconds: expires
    /// connections, re-checks next hops (often while one is pending) and
    /// republishes when one changed.
    pub fn tick(&mut self) {
        self.conns.expire(self.clock.now_ms(), EXPIRE_BUDGET);
        self.check_pressure();
        self.sample_rates();
        if self.health.update(&mut self.director) {
            self.publish();
            return;
        }
        let every = if self.pending {
            REFRESH_PENDING
        } else {
            REFRESH_EVERY
        };
        if self.last_refresh.elapsed() >= every && self.refresh_next_hops() {
            let snap = self.build();
            self.snapshot.store(Arc::new(snap));
            self.sync_steering();
        }
    }

    /// Whether the connection table is under pressure (see
    /// [`PRESSURE_ON`]).
    pub fn under_pressure(&self) -> bool {
        self.pressure.is_some()
    }

    /// Shortens half-open connections' timeout while the table is nearly
    /// full, so a SYN flood's entries make room in seconds rather than a
    /// minute; restores it when the table has room again.
    fn check_pressure(&mut self) {
        use xvs_conntrack::TcpState::SynRecv;
        let (len, cap) = (self.conns.len(), self.conns.capacity());
        match self.pressure {
            None if len * PRESSURE_ON.1 >= cap * PRESSURE_ON.0 => {
                let normal = (self.conns.timeouts.tcp_ms(SynRecv) / 1000) as u32;
                let mut clamped = 0;
                if normal > PRESSURE_SYN_RECV_S {
                    self.conns
                        .timeouts
                        .set_tcp_state(SynRecv, PRESSURE_SYN_RECV_S);
                    clamped = self.conns.clamp_expiry(
                        self.clock.now_ms(),
                        SynRecv,
                        u64::from(PRESSURE_SYN_RECV_S) * 1000,
                    );
                }
                eprintln!(
                    "xvsd: connection table {len} of {cap}: half-open connections now time                      out after {PRESSURE_SYN_RECV_S} s ({clamped} shortened)"
                );
                self.pressure = Some(normal);
            }
            Some(normal) if len * PRESSURE_OFF.1 < cap * PRESSURE_OFF.0 => {
                self.conns.timeouts.set_tcp_state(SynRecv, normal);
                eprintln!(
                    "xvsd: connection table {len} of {cap}: SYN_RECV timeout back to {normal} s"
                );
                self.pressure = None;
            }
            _ => {}
        }
    }

    /// Re-reads the interfaces and default routes and refreshes every next
    /// hop; true when something the snapshot holds changed.
    fn refresh_next_hops(&mut self) -> bool {
        self.last_refresh = Instant::now();
        let mut changed = false;
        for link in &mut self.links {
            match self.nl.link_by_index(link.ifindex) {
                Ok(now) => {
                    if now != *link {
                        *link = now;
                        changed = true;
                    }
                }
                Err(e) => eprintln!("xvsd: interface {}: {e}", link.name),
            }
        }
        let mut targets: Vec<IpAddr> = self
            .director
            .real_servers()
            .iter()
            .map(|a| a.to_ip())
            .collect();
        let gateways = self.default_gateways();
        changed |= gateways != self.gateways;
        self.gateways = gateways;
        targets.extend(gateways.into_iter().flatten());
        match self.resolver.refresh(&mut self.nl, &targets) {
            Ok(changes) => changed |= !changes.is_empty(),
            Err(e) => eprintln!("xvsd: neighbour refresh: {e}"),
        }
        self.pending = targets
            .iter()
            .any(|t| matches!(self.resolver.get(*t), Some(Resolution::Pending { .. })));
        changed
    }

    /// The gateways of the main table's default routes (IPv4, IPv6).
    fn default_gateways(&mut self) -> [Option<IpAddr>; 2] {
        let mut out = [None; 2];
        for af in [Af::V4, Af::V6] {
            match self.nl.default_route(af) {
                Ok(r) => out[af_index(af)] = r.and_then(|r| r.gateway),
                Err(e) => eprintln!("xvsd: default route: {e}"),
            }
        }
        out
    }

    fn iface_of(&self, ifindex: u32) -> Option<u8> {
        self.links
            .iter()
            .position(|l| l.ifindex == ifindex)
            .map(|i| i as u8)
    }

    fn reach(&self, target: IpAddr) -> Option<Reach> {
        match self.resolver.get(target)? {
            Resolution::Ready { hop, mac } => Some(Reach {
                iface: self.iface_of(hop.ifindex)?,
                mac: Some(*mac),
            }),
            Resolution::Pending { hop, .. } => Some(Reach {
                iface: self.iface_of(hop.ifindex)?,
                mac: None,
            }),
            Resolution::Unusable(_) => None,
        }
    }

    fn build(&mut self) -> Snapshot {
        let ifaces: Vec<Iface> = self
            .links
            .iter()
            .map(|l| Iface {
                mac: l.mac.unwrap_or_default(),
                mtu: l.mtu.min(u32::from(u16::MAX)) as u16,
                addr4: l.source_v4().map(|a| a.octets()),
                addr6: l.source_v6().map(|a| a.octets()),
            })
            .collect();
        let mut gateways = [None; 2];
        for (i, gw) in self.gateways.into_iter().enumerate() {
            gateways[i] = gw.and_then(|g| self.reach(g)).and_then(|r| {
                Some(Gateway {
                    iface: r.iface,
                    mac: r.mac?,
                })
            });
        }
        let reach: HashMap<xvs_conntrack::Addr, Reach> = self
            .director
            .real_servers()
            .into_iter()
            .filter_map(|a| Some((a, self.reach(a.to_ip())?)))
            .collect();
        self.director
            .build(ifaces, gateways, Vec::new(), |a| reach.get(a).copied())
    }

    /// Makes the VIP map hold every service address and the real-server map
    /// every NAT real server (whose replies the director must see).
    fn sync_steering(&mut self) {
        let Some(steering) = self.steering.as_mut() else {
            return;
        };
        let mut vips = Vec::new();
        let mut reals = Vec::new();
        // Configured real servers (a removed one's connections go on) and
        // sorry servers.
        for (addr, _, dests) in self.director.services() {
            let sorry = self.director.sorry_of(addr);
            let dests: Vec<(DestId, crate::director::DestConf)> =
                dests.iter().copied().chain(sorry).collect();
            let SvcAddr::Tuple {
                proto,
                vaddr,
                vport,
            } = *addr
            else {
                // Fwmark services are steered by their mark rules' addresses
                // (none configured through ipvsadm's grammar).
                continue;
            };
            vips.push((SteerKey::new(proto, vaddr, vport), 0));
            for (_, d) in dests {
                if d.fwd == Fwd::Masq {
                    reals.push((SteerKey::new(proto, d.addr, d.port), 0));
                }
            }
        }
        if let Err(e) = steering.replace_vips(vips) {
            eprintln!("xvsd: steering VIP map: {e}");
        }
        if let Err(e) = steering.replace_reals(reals) {
            eprintln!("xvsd: steering real-server map: {e}");
        }
        let locals = self
            .links
            .iter()
            .flat_map(|l| l.ipv4.iter().chain(&l.ipv6))
            .map(|a| xvs_conntrack::Addr::from(a.addr));
        if let Err(e) = steering.replace_locals(locals) {
            eprintln!("xvsd: steering local addresses: {e}");
        }
    }
}

/// Counters by name.
fn named<'a>(
    counters: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::collections::BTreeMap<String, u64> {
    counters
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}
