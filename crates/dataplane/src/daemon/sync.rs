//! Connection sync daemons (`xvsadm --start-daemon master|backup`): the
//! master sends the connections its workers offer ([`SyncTap`]) to the
//! backups; a backup installs what it receives into its own table, so that
//! after a failover it carries the established connections to the same
//! real servers. The format and its authentication are `xvs-sync`'s
//! (docs/sync-protocol.md).
//!
//! Each daemon is one thread, off the data plane:
//!
//! - master: every [`MASTER_ROUND`] it drains every worker's tap, reads each
//!   offered entry from the shared table (an entry gone since is skipped),
//!   packs the entries into sealed datagrams and sends them (multicast on
//!   the interface, or to each unicast peer);
//! - backup: waits for datagrams (at most [`BACKUP_WAIT`] at a time, so it
//!   notices a stop), verifies them, finds each entry's real server in the
//!   published snapshot (same service and real server address as on the
//!   master) and installs the entry; entries for services or real servers
//!   this director does not have are counted and dropped.
//!
//! One master and one backup may run at once (as IPVS allows), each started
//! and stopped on its own.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use xvs_conntrack::{ConnTable, Fwd, InsertError, Installed, Proto, Synced};
use xvs_ctl::{DaemonOpts, SyncState};
use xvs_sync::{
    Encoder, Key, Multicast, Receiver, Recv, RecvStats, Sender, SyncConn, Verifier, VerifierConfig,
};

use crate::pipeline::SyncTap;
use crate::service::Snapshot;
use crate::worker::Clock;

/// How often the master drains the workers' taps: the most a backup lags.
pub const MASTER_ROUND: Duration = Duration::from_millis(5);
/// Longest a backup waits in one receive before checking for a stop.
pub const BACKUP_WAIT: Duration = Duration::from_millis(100);
use xvs_sync::socket::{DEFAULT_GROUP, DEFAULT_PORT, DEFAULT_TTL};
/// Most offers one master round takes from one worker.
const DRAIN_MAX: usize = 64 * 1024;

/// The workers' taps, shared with the master thread (workers are added
/// after a daemon may have been started from the configuration file).
pub type Taps = Arc<Mutex<Vec<Arc<SyncTap>>>>;

/// Counters of one daemon, by name (shown by `xvsadm -L --daemon --json`).
#[derive(Debug, Default)]
struct Counters {
    /// Master: entries sent, datagrams sent, send errors, offers whose
    /// entry was gone, offers dropped by full taps (at the workers).
    sent_entries: AtomicU64,
    sent_datagrams: AtomicU64,
    send_errors: AtomicU64,
    gone: AtomicU64,
    /// Backup: the verifier's counters (copied after each datagram),
    /// entries installed or refused.
    recv: Mutex<RecvStats>,
    installed: AtomicU64,
    updated: AtomicU64,
    no_service: AtomicU64,
    no_dest: AtomicU64,
    table_full: AtomicU64,
}

/// A running sync daemon.
#[derive(Debug)]
pub struct SyncDaemon {
    opts: DaemonOpts,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    taps: Taps,
}

/// The settings in use, with ipvsadm's defaults filled in (what `-L
/// --daemon` prints).
fn effective(o: &DaemonOpts, maxlen: usize) -> DaemonOpts {
    let mut e = o.clone();
    e.sync_maxlen = Some(maxlen as u16);
    if e.peers.is_empty() {
        e.mcast_group = Some(o.mcast_group.unwrap_or(IpAddr::V4(DEFAULT_GROUP)));
        e.mcast_port = Some(o.mcast_port.unwrap_or(DEFAULT_PORT));
        e.mcast_ttl = Some(o.mcast_ttl.unwrap_or(DEFAULT_TTL));
    } else {
        e.mcast_port = Some(o.mcast_port.unwrap_or(DEFAULT_PORT));
    }
    e
}

fn channel(o: &DaemonOpts) -> Multicast {
    Multicast {
        group: o.mcast_group.unwrap_or(IpAddr::V4(DEFAULT_GROUP)),
        port: o.mcast_port.unwrap_or(DEFAULT_PORT),
        iface: o.mcast_iface.clone(),
        ttl: o.mcast_ttl.unwrap_or(DEFAULT_TTL),
    }
}

/// For unicast peers (all of one family), the unspecified address of
/// their family; `None` for multicast (no peers).
fn unicast_any(peers: &[SocketAddr]) -> Result<Option<IpAddr>, String> {
    let Some(first) = peers.first() else {
        return Ok(None);
    };
    if peers.iter().any(|p| p.is_ipv4() != first.is_ipv4()) {
        return Err("sync peers must all be IPv4 or all IPv6".into());
    }
    Ok(Some(if first.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    }))
}

impl SyncDaemon {
    /// Opens the daemon's socket and starts its thread. Errors (no such
    /// interface, address in use) come back before anything runs.
    pub fn start(
        opts: &DaemonOpts,
        key: &Key,
        conns: Arc<ConnTable>,
        snapshot: Arc<ArcSwap<Snapshot>>,
        taps: Taps,
        clock: Clock,
    ) -> Result<SyncDaemon, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (thread, shown) = match opts.state {
            SyncState::Master => {
                let maxlen = opts
                    .sync_maxlen
                    .map_or(xvs_sync::wire::DEFAULT_MAXLEN, usize::from);
                let enc = Encoder::with_random_id(key.clone(), opts.syncid, maxlen)
                    .map_err(|e| format!("sync master: {e}"))?;
                let sender = match unicast_any(&opts.peers)? {
                    None => Sender::multicast(&channel(opts), enc),
                    Some(any) => Sender::unicast(SocketAddr::new(any, 0), opts.peers.clone(), enc),
                }
                .map_err(|e| format!("sync master on {}: {e}", opts.mcast_iface))?;
                let m = Master {
                    sender,
                    conns,
                    taps: Arc::clone(&taps),
                    clock,
                    counters: Arc::clone(&counters),
                    stop: Arc::clone(&stop),
                };
                for t in taps.lock().iter() {
                    t.set_on(true);
                }
                (
                    spawn("xvs-sync-master", move || m.run())?,
                    effective(opts, maxlen),
                )
            }
            SyncState::Backup => {
                let verifier = Verifier::new(
                    key.clone(),
                    VerifierConfig {
                        syncid: opts.syncid,
                        ..VerifierConfig::default()
                    },
                );
                let receiver = match unicast_any(&opts.peers)? {
                    None => Receiver::multicast(&channel(opts), verifier),
                    // Unicast: the sync port of every address of the
                    // peers' family.
                    Some(any) => Receiver::unicast(
                        SocketAddr::new(any, opts.mcast_port.unwrap_or(DEFAULT_PORT)),
                        verifier,
                    ),
                }
                .map_err(|e| format!("sync backup on {}: {e}", opts.mcast_iface))?;
                receiver
                    .set_read_timeout(Some(BACKUP_WAIT))
                    .map_err(|e| format!("sync backup: {e}"))?;
                let maxlen = opts
                    .sync_maxlen
                    .map_or(xvs_sync::wire::DEFAULT_MAXLEN, usize::from);
                let b = Backup {
                    receiver,
                    conns,
                    snapshot,
                    clock,
                    counters: Arc::clone(&counters),
                    stop: Arc::clone(&stop),
                };
                (
                    spawn("xvs-sync-backup", move || b.run())?,
                    effective(opts, maxlen),
                )
            }
        };
        Ok(SyncDaemon {
            opts: shown,
            stop,
            thread: Some(thread),
            counters,
            taps,
        })
    }

    /// Master or backup.
    pub fn state(&self) -> SyncState {
        self.opts.state
    }

    /// What `-L --daemon` shows: the settings in use and the counters.
    pub fn listing(&self) -> xvs_ctl::state::SyncDaemon {
        let c = &self.counters;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: &AtomicU64| {
            m.insert(k.to_owned(), v.load(Relaxed));
        };
        match self.opts.state {
            SyncState::Master => {
                put("sent_entries", &c.sent_entries);
                put("sent_datagrams", &c.sent_datagrams);
                put("send_errors", &c.send_errors);
                put("gone", &c.gone);
                let overflow: u64 = self.taps.lock().iter().map(|t| t.counters().1).sum();
                m.insert("tap_overflow".into(), overflow);
            }
            SyncState::Backup => {
                let r = *c.recv.lock();
                for (k, v) in [
                    ("received", r.received),
                    ("accepted", r.accepted),
                    ("entries", r.entries),
                    ("malformed", r.malformed),
                    ("bad_mac", r.bad_mac),
                    ("wrong_syncid", r.wrong_syncid),
                    ("stale", r.stale),
                    ("replayed", r.replayed),
                    ("too_old", r.too_old),
                    ("new_senders", r.new_senders),
                ] {
                    put(k, &AtomicU64::new(v));
                }
                put("installed", &c.installed);
                put("updated", &c.updated);
                put("no_service", &c.no_service);
                put("no_dest", &c.no_dest);
                put("table_full", &c.table_full);
            }
        }
        xvs_ctl::state::SyncDaemon {
            opts: self.opts.clone(),
            counters: m,
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            if self.opts.state == SyncState::Master {
                for t in self.taps.lock().iter() {
                    t.set_on(false);
                }
            }
            if t.join().is_err() {
                eprintln!("xvsd: the {} sync thread panicked", self.opts.state.name());
            }
        }
    }
}

impl Drop for SyncDaemon {
    fn drop(&mut self) {
        self.halt();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("{name} thread: {e}"))
}

struct Master {
    sender: Sender,
    conns: Arc<ConnTable>,
    taps: Taps,
    clock: Clock,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Master {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(1024);
        while !self.stop.load(Relaxed) {
            let taps: Vec<Arc<SyncTap>> = self.taps.lock().clone();
            for t in &taps {
                // A worker added after the daemon started.
                t.set_on(true);
                t.drain(DRAIN_MAX, |k| batch.push(k));
            }
            let now = self.clock.now_ms();
            for k in batch.drain(..) {
                let Some(c) = self.conns.peek_in(&k) else {
                    self.counters.gone.fetch_add(1, Relaxed);
                    continue;
                };
                // A failed send is counted by the sender; the entry is
                // offered again at its next state change or refresh.
                let _ = self.sender.push(&SyncConn::from_conn(&c, now));
                self.counters.sent_entries.fetch_add(1, Relaxed);
            }
            let _ = self.sender.flush();
            let st = self.sender.stats();
            self.counters.sent_datagrams.store(st.datagrams, Relaxed);
            self.counters.send_errors.store(st.errors, Relaxed);
            std::thread::sleep(MASTER_ROUND);
        }
    }
}

struct Backup {
    receiver: Receiver,
    conns: Arc<ConnTable>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    clock: Clock,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Backup {
    fn run(mut self) {
        let mut entries = Vec::with_capacity(64);
        while !self.stop.load(Relaxed) {
            entries.clear();
            match self.receiver.recv(&mut entries) {
                Ok(Recv::Accepted { .. }) => {
                    let snap = self.snapshot.load();
                    let now = self.clock.now_ms();
                    for e in &entries {
                        self.install(&snap, now, e);
                    }
                }
                Ok(Recv::Rejected { .. } | Recv::Idle) => {}
                Err(e) => {
                    eprintln!("xvsd: sync backup: {e}");
                    std::thread::sleep(BACKUP_WAIT);
                }
            }
            *self.counters.recv.lock() = *self.receiver.stats();
        }
    }

    /// Finds the entry's real server here and installs it.
    fn install(&self, snap: &Snapshot, now: u64, e: &SyncConn) {
        let c = &self.counters;
        let Some(dest) = local_dest(snap, e) else {
            c.no_service.fetch_add(1, Relaxed);
            return;
        };
        let Some(dest) = dest else {
            c.no_dest.fetch_add(1, Relaxed);
            return;
        };
        let s = Synced {
            key: e.key(),
            daddr: e.daddr,
            dport: e.dport,
            dest,
            fwd: e.fwd,
            state: e.state,
            template: e.is_template(),
            timeout_ms: u64::from(e.timeout_ms),
        };
        match self.conns.install(now, &s) {
            Ok(Installed::New) => c.installed.fetch_add(1, Relaxed),
            Ok(Installed::Updated) => c.updated.fetch_add(1, Relaxed),
            Err(InsertError::Full) => c.table_full.fetch_add(1, Relaxed),
        };
    }
}

/// The local slot of a synced entry's real server: `None` when this
/// director has no such service, `Some(None)` when the service lacks that
/// real server.
fn local_dest(snap: &Snapshot, e: &SyncConn) -> Option<Option<xvs_conntrack::DestId>> {
    if e.proto == Proto::Any {
        // A fwmark template: its service is found by mark alone, which no
        // packet carries yet (fwmark services have no mark source).
        return None;
    }
    let svc = snap.find(e.proto, &e.vaddr, e.vport, e.fwmark)?;
    let mut by_addr = svc.dests.iter().filter(|d| d.addr == e.daddr);
    let first = by_addr.next();
    // DR and TUN keep the virtual port, so the port only tells real servers
    // on one address apart for NAT.
    let d = match (first, e.fwd) {
        (Some(d), Fwd::Masq) if d.port != e.dport => svc
            .dests
            .iter()
            .find(|d| d.addr == e.daddr && d.port == e.dport)
            .or(Some(d)),
        (d, _) => d,
    };
    Some(d.map(|d| d.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::{DestConf, Director, Reach, ServiceConf};
    use crate::service::SvcAddr;
    use xvs_conntrack::{Addr, ConnKey, DestTable, TableConfig, TcpState};
    use xvs_sched::SchedFlags;

    const VIP: [u8; 4] = [192, 0, 2, 50];

    /// A director with one DR service and two real servers, its table and
    /// its published snapshot.
    fn director() -> (Arc<ConnTable>, Arc<ArcSwap<Snapshot>>) {
        let dests = Arc::new(DestTable::new(8));
        let conns = Arc::new(ConnTable::new(
            TableConfig {
                capacity: 1024,
                shards: 4,
                prealloc: false,
            },
            Arc::clone(&dests),
        ));
        let mut d = Director::new(dests);
        let svc = SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: Addr::v4(VIP),
            vport: 80,
        };
        d.add_service(
            svc,
            ServiceConf {
                sched: "rr".into(),
                flags: SchedFlags::NONE,
                persistence: None,
            },
        )
        .unwrap();
        for n in [20, 30] {
            d.add_dest(
                &svc,
                DestConf {
                    addr: Addr::v4([192, 0, 2, n]),
                    port: 80,
                    fwd: Fwd::Route,
                    weight: 1,
                    upper: 0,
                    lower: 0,
                },
            )
            .unwrap();
        }
        let snap = d.build(Vec::new(), [None, None], Vec::new(), |_| {
            Some(Reach {
                iface: 0,
                mac: Some([2, 0, 0, 0, 0, 1]),
            })
        });
        (conns, Arc::new(ArcSwap::from_pointee(snap)))
    }

    fn opts(state: SyncState, peer: SocketAddr) -> DaemonOpts {
        let mut o = DaemonOpts::new(state);
        o.mcast_iface = "lo".into();
        o.syncid = 7;
        o.mcast_port = Some(peer.port());
        o.peers = vec![peer];
        o
    }

    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Master to backup over unicast UDP on loopback: what the master's
    /// workers offer appears in the backup's table, on the same real
    /// server, with the master's TCP state; a daemon with another key
    /// installs nothing and counts every datagram as a bad MAC.
    #[test]
    fn master_to_backup_on_loopback() {
        let key = Key::from_bytes(b"sixteen bytes of secret, at least").unwrap();
        let port = free_port();
        let peer = SocketAddr::from(([127, 0, 0, 1], port));
        let (bconns, bsnap) = director();
        let backup = SyncDaemon::start(
            &opts(SyncState::Backup, peer),
            &key,
            Arc::clone(&bconns),
            bsnap,
            Taps::default(),
            Clock::new(),
        )
        .unwrap();
        let (mconns, msnap) = director();
        let tap = Arc::new(SyncTap::new(1024));
        let taps: Taps = Arc::new(Mutex::new(vec![Arc::clone(&tap)]));
        let master = SyncDaemon::start(
            &opts(SyncState::Master, peer),
            &key,
            Arc::clone(&mconns),
            msnap.clone(),
            taps,
            Clock::new(),
        )
        .unwrap();
        assert!(tap.is_on(), "a master turns the taps on");
        let snap = msnap.load();
        let rs = &snap.services().next().unwrap().dests[1];
        let n = 300u16;
        for p in 0..n {
            let key = ConnKey {
                proto: Proto::Tcp,
                caddr: Addr::v4([198, 51, 100, 1]),
                cport: 10_000 + p,
                vaddr: Addr::v4(VIP),
                vport: 80,
            };
            let nc = xvs_conntrack::NewConn {
                key,
                daddr: rs.addr,
                dport: 80,
                dest: rs.id,
                fwd: Fwd::Route,
                template: None,
            };
            mconns
                .insert(0, &nc, xvs_conntrack::tcp_flags::SYN, 60)
                .unwrap();
            mconns.lookup_in(1, &key, xvs_conntrack::tcp_flags::ACK, 40);
            tap.offer(key);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while bconns.len() < usize::from(n) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(bconns.len(), usize::from(n), "{:?}", backup.listing());
        let k = ConnKey {
            proto: Proto::Tcp,
            caddr: Addr::v4([198, 51, 100, 1]),
            cport: 10_123,
            vaddr: Addr::v4(VIP),
            vport: 80,
        };
        let c = bconns.peek_in(&k).expect("synced");
        assert_eq!((c.daddr, c.tcp_state()), (rs.addr, TcpState::Established));
        let l = master.listing();
        assert_eq!(l.counters["sent_entries"], u64::from(n));
        assert!(l.counters["sent_datagrams"] >= u64::from(n) / 43);
        assert!(l.opts.sync_maxlen.is_some());
        let b = backup.listing().counters;
        assert_eq!(b["installed"], u64::from(n));
        assert_eq!(b["bad_mac"], 0);
        master.stop();
        assert!(!tap.is_on(), "stopping the master turns the taps off");

        // A master with another key: everything refused.
        let other = Key::from_bytes(b"another secret of sixteen bytes+").unwrap();
        let (oconns, osnap) = director();
        let tap = Arc::new(SyncTap::new(16));
        let intruder = SyncDaemon::start(
            &opts(SyncState::Master, peer),
            &other,
            Arc::clone(&oconns),
            osnap,
            Arc::new(Mutex::new(vec![Arc::clone(&tap)])),
            Clock::new(),
        )
        .unwrap();
        let key = ConnKey {
            proto: Proto::Tcp,
            caddr: Addr::v4([203, 0, 113, 9]),
            cport: 999,
            vaddr: Addr::v4(VIP),
            vport: 80,
        };
        oconns
            .insert(
                0,
                &xvs_conntrack::NewConn {
                    key,
                    daddr: rs.addr,
                    dport: 80,
                    dest: rs.id,
                    fwd: Fwd::Route,
                    template: None,
                },
                xvs_conntrack::tcp_flags::SYN,
                60,
            )
            .unwrap();
        tap.offer(key);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while backup.listing().counters["bad_mac"] == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        intruder.stop();
        assert_eq!(backup.listing().counters["bad_mac"], 1);
        assert!(
            bconns.peek_in(&key).is_none(),
            "a forged entry is not installed"
        );
        backup.stop();
    }
}
