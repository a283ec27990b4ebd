//! The data plane's side of connection sync: each worker offers the keys of
//! connections a backup should learn about (created, TCP state changed,
//! periodic refresh: [`ConnView::sync`](xvs_conntrack::ConnView::sync)) to
//! its own bounded queue; the master's sync thread drains every worker's
//! queue, reads the entries from the shared table and sends them.
//!
//! The worker never blocks and never allocates here: with sync off the cost
//! is one predictable branch on a flag that is rarely set; with sync on, a
//! push into a single-producer slot of a lock-free ring. A full ring drops
//! the offer and counts it (the periodic refresh offers the entry again).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use xvs_conntrack::ConnKey;

/// Offers each worker can have outstanding before the sync thread drains
/// them (the thread drains every few milliseconds).
pub const TAP_CAPACITY: usize = 16 * 1024;

/// One worker's queue of connections to sync.
#[derive(Debug)]
pub struct SyncTap {
    on: CachePadded<AtomicBool>,
    queue: ArrayQueue<ConnKey>,
    offered: CachePadded<AtomicU64>,
    overflow: AtomicU64,
}

impl Default for SyncTap {
    fn default() -> Self {
        SyncTap::new(TAP_CAPACITY)
    }
}

impl SyncTap {
    /// A tap holding at most `capacity` offers; off until [`Self::set_on`].
    pub fn new(capacity: usize) -> SyncTap {
        SyncTap {
            on: CachePadded::new(AtomicBool::new(false)),
            queue: ArrayQueue::new(capacity.max(1)),
            offered: CachePadded::new(AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
        }
    }

    /// Turns offers on (a master sync daemon runs) or off (and drops what
    /// is queued).
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Relaxed);
        if !on {
            while self.queue.pop().is_some() {}
        }
    }

    /// Whether offers are taken.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Offers a connection (worker side).
    #[inline]
    pub fn offer(&self, key: ConnKey) {
        if !self.is_on() {
            return;
        }
        // Single producer: the worker is the only writer of these counters.
        self.offered
            .store(self.offered.load(Relaxed).wrapping_add(1), Relaxed);
        if self.queue.push(key).is_err() {
            self.overflow
                .store(self.overflow.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// Takes up to `max` offers (sync thread side).
    pub fn drain(&self, max: usize, mut f: impl FnMut(ConnKey)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(k) = self.queue.pop() else { break };
            f(k);
            n += 1;
        }
        n
    }

    /// Offers taken since start, and offers dropped because the queue was full.
    pub fn counters(&self) -> (u64, u64) {
        (self.offered.load(Relaxed), self.overflow.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_conntrack::{Addr, Proto};

    fn k(p: u16) -> ConnKey {
        ConnKey {
            proto: Proto::Tcp,
            caddr: Addr::v4([10, 0, 0, 1]),
            cport: p,
            vaddr: Addr::v4([192, 0, 2, 1]),
            vport: 80,
        }
    }

    #[test]
    fn off_takes_nothing_on_takes_until_full() {
        let t = SyncTap::new(2);
        t.offer(k(1));
        assert_eq!(t.drain(10, |_| {}), 0);
        t.set_on(true);
        for p in 1..=3 {
            t.offer(k(p));
        }
        assert_eq!(t.counters(), (3, 1));
        let mut got = Vec::new();
        assert_eq!(t.drain(10, |k| got.push(k.cport)), 2);
        assert_eq!(got, [1, 2]);
        t.offer(k(9));
        t.set_on(false);
        assert_eq!(t.drain(10, |_| {}), 0, "turning off empties the queue");
    }
}
