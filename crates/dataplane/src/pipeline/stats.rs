//! Per-worker counters.
//!
//! Each worker owns one [`WorkerStats`] and is its only writer: a counter
//! update is a relaxed load and store of the worker's own cache lines (no
//! atomic read-modify-write, nothing shared between workers). The control
//! thread reads every worker's counters with relaxed loads and sums them,
//! as IPVS sums its per-CPU `ip_vs_cpu_stats`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xvs_conntrack::DestId;

use super::verdict::{DropReason, PassReason, ReplyReason, Verdict};

/// A counter with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker calls this, so a load and a store
    /// suffice.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Traffic counters of one real server (ipvsadm `--stats` columns).
#[derive(Debug, Default)]
pub struct DestCounters {
    /// Connections created.
    pub conns: Counter,
    /// Packets client -> real server.
    pub in_pkts: Counter,
    /// Bytes (IP length) client -> real server.
    pub in_bytes: Counter,
    /// Packets real server -> client (NAT only: DR and TUN replies bypass
    /// the director).
    pub out_pkts: Counter,
    /// Bytes real server -> client.
    pub out_bytes: Counter,
}

/// A copy of [`DestCounters`] (sums, listings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestTotals {
    /// Connections created.
    pub conns: u64,
    /// Packets client -> real server.
    pub in_pkts: u64,
    /// Bytes client -> real server.
    pub in_bytes: u64,
    /// Packets real server -> client.
    pub out_pkts: u64,
    /// Bytes real server -> client.
    pub out_bytes: u64,
}

impl DestTotals {
    /// Adds `c` to these totals.
    pub fn add(&mut self, c: &DestCounters) {
        self.conns += c.conns.get();
        self.in_pkts += c.in_pkts.get();
        self.in_bytes += c.in_bytes.get();
        self.out_pkts += c.out_pkts.get();
        self.out_bytes += c.out_bytes.get();
    }
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerStats {
    /// Frames received (every call to `process`).
    pub rx: Counter,
    /// Frames forwarded ([`Verdict::Tx`]).
    pub tx: Counter,
    /// ICMP replies, by reason.
    pub replies: [Counter; ReplyReason::ALL.len()],
    /// Frames given to the kernel, by reason.
    pub passes: [Counter; PassReason::ALL.len()],
    /// Drops, by reason ([`DropReason::index`]).
    pub drops: [Counter; DropReason::COUNT],
    /// Per real server, indexed by [`DestId`].
    dests: Box<[DestCounters]>,
}

impl WorkerStats {
    /// Counters for `dest_slots` destination slots (the size of the
    /// connection table's destination arena).
    pub fn new(dest_slots: usize) -> WorkerStats {
        WorkerStats {
            rx: Counter::default(),
            tx: Counter::default(),
            replies: Default::default(),
            passes: Default::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            dests: (0..dest_slots).map(|_| DestCounters::default()).collect(),
        }
    }

    /// Counts a verdict.
    #[inline]
    pub fn count(&self, v: Verdict) {
        self.rx.add(1);
        match v {
            Verdict::Tx { .. } => self.tx.add(1),
            Verdict::Reply(r) => self.replies[r.index()].add(1),
            Verdict::Pass(r) => self.passes[r.index()].add(1),
            Verdict::Drop(r) => self.drops[r.index()].add(1),
        }
    }

    /// The counters of destination `id`, if in range.
    #[inline]
    pub fn dest(&self, id: DestId) -> Option<&DestCounters> {
        self.dests.get(id as usize)
    }

    /// Number of destination slots counted.
    pub fn dest_slots(&self) -> usize {
        self.dests.len()
    }

    /// Drops counted for `r`.
    pub fn dropped(&self, r: impl Into<DropReason>) -> u64 {
        self.drops[r.into().index()].get()
    }

    /// Frames passed for `r`.
    pub fn passed(&self, r: PassReason) -> u64 {
        self.passes[r.index()].get()
    }

    /// Replies sent for `r`.
    pub fn replied(&self, r: ReplyReason) -> u64 {
        self.replies[r.index()].get()
    }
}
