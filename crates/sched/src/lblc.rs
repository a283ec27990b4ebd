//! Locality-based least connection: lblc (`ip_vs_lblc.c`) and lblcr with
//! replication (`ip_vs_lblcr.c`).
//!
//! See [`Lblc`] for the shared address table, its bounds and where it
//! departs from the kernel.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::Mutex;
use xvs_conntrack::{Addr, ConnKey, DestId, DestTable};

use crate::lru::Lru;
use crate::pool::{Pool, conn_overhead, heavier, least_weighted, usable};
use crate::{DestInfo, PickCx, Scheduler};

/// `IP_VS_LBLC_TAB_SIZE * 16`: the kernel's table size limit.
const DEFAULT_CAPACITY: usize = 1024 * 16;
/// `DEFAULT_EXPIRATION` of both modules: 24 hours.
const DEFAULT_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;

/// The list index of every destination id (built at update).
fn index_of(dests: &[DestInfo]) -> HashMap<DestId, u32> {
    dests
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id, i as u32))
        .collect()
}

/// lblc/lblcr's `is_overloaded(dest, svc)`: the server has more active
/// connections than its weight while some server in the service has fewer
/// than half its weight, so moving the address is worth it.
fn locality_overloaded(pool: &Pool, dests: &DestTable, i: usize) -> bool {
    if i64::from(pool.slot(dests, i).active()) <= i64::from(pool.weight(i)) {
        return false;
    }
    pool.ids()
        .iter()
        .zip(pool.weights())
        .any(|(&id, &w)| i64::from(dests.get(id).active()) * 2 < i64::from(w))
}

/// Locality-based least-connection scheduling, as `ip_vs_lblc_schedule`.
///
/// The destination (virtual) address of the connection is looked up in the
/// table. If it is known and its server may take the connection (weight >
/// 0, available, not overloaded) and is not "overloaded" in lblc's sense
/// (more active connections than its weight while another server is below
/// half of its weight), that server is chosen. Otherwise a server is chosen
/// as by [`Wlc`](crate::Wlc) and remembered for the address.
///
/// # The address table (lblc and lblcr)
///
/// The table is shared by all workers: it lives behind a mutex, is
/// allocated once at construction, holds at most `capacity` addresses (the
/// kernel's soft limit, `IP_VS_LBLC_TAB_SIZE * 16` = 16384, made hard) and
/// evicts the least recently used address when full. An address unused for
/// the expiration time (sysctl `lblc_expiration` / `lblcr_expiration`, 24
/// hours by default) is forgotten. Time is the pick's
/// [`now_ms`](crate::PickCx::now_ms). Clones share the table, and
/// [`Scheduler::update`] keeps it: entries name destinations by id.
///
/// Differences from the kernel, forced by "bounded, no allocation, no
/// timer" or by the crate's rules:
/// - The kernel lets its table grow past the limit and trims it from a
///   timer every minute (entries idle for 6 minutes first, plus a full
///   24-hour sweep every 30 minutes). Here the table cannot grow: an insert
///   into a full table evicts the least recently used entry at once, and
///   expired entries are dropped at the next pick, oldest first (so an
///   entry is forgotten exactly at its expiration, not up to 30 minutes
///   later).
/// - A remembered server that is no longer in the service is ignored (and
///   dropped from lblcr sets); the kernel keeps it referenced in its
///   destination trash until the entry goes.
/// - A remembered lblc server with the overload flag (`-x` threshold) set
///   is not reused; the kernel only checks weight and availability there,
///   but every scheduler here honours the overload flag.
/// - lblcr sets are bounded, see [`Lblcr`].
#[derive(Clone)]
pub struct Lblc {
    pool: Pool,
    index: HashMap<DestId, u32>,
    table: Arc<Mutex<Lru<DestId>>>,
    expiration_ms: u64,
}

impl Lblc {
    /// Addresses remembered by [`Lblc::new`].
    pub const DEFAULT_CAPACITY: usize = DEFAULT_CAPACITY;
    /// Idle time after which [`Lblc::new`] forgets an address (sysctl
    /// `lblc_expiration`, 24 hours).
    pub const DEFAULT_EXPIRATION_MS: u64 = DEFAULT_EXPIRATION_MS;

    /// An lblc scheduler with the kernel's defaults and no destinations.
    pub fn new() -> Lblc {
        Lblc::with_params(DEFAULT_CAPACITY, DEFAULT_EXPIRATION_MS)
    }

    /// An lblc scheduler remembering at most `capacity` addresses (at least
    /// 1), each for `expiration_ms` after its last use.
    pub fn with_params(capacity: usize, expiration_ms: u64) -> Lblc {
        Lblc {
            pool: Pool::default(),
            index: HashMap::new(),
            table: Arc::new(Mutex::new(Lru::with_capacity(capacity))),
            expiration_ms,
        }
    }

    /// Addresses currently remembered.
    pub fn entries(&self) -> usize {
        self.table.lock().len()
    }

    /// Table capacity in addresses.
    pub fn capacity(&self) -> usize {
        self.table.lock().capacity()
    }
}

impl Default for Lblc {
    fn default() -> Lblc {
        Lblc::new()
    }
}

impl fmt::Debug for Lblc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.table.try_lock().map(|t| t.len());
        f.debug_struct("Lblc")
            .field("pool", &self.pool)
            .field("entries", &entries)
            .field("expiration_ms", &self.expiration_ms)
            .finish_non_exhaustive()
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        self.index = index_of(dests);
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let (dests, now) = (cx.dests, cx.now_ms);
        let cached = {
            let mut t = self.table.lock();
            t.expire(now, self.expiration_ms);
            t.touch(&key.vaddr, now).copied()
        };
        if let Some(&i) = cached.and_then(|id| self.index.get(&id)) {
            let i = i as usize;
            if self.pool.usable(dests, i) && !locality_overloaded(&self.pool, dests, i) {
                return Some(i);
            }
        }
        // No entry, or its server is unfit: schedule and remember.
        let i = least_weighted(&self.pool, dests, conn_overhead)?;
        let id = *self.pool.ids().get(i)?;
        let mut t = self.table.lock();
        match t.get_mut(&key.vaddr) {
            Some(v) => *v = id,
            None => {
                t.insert(key.vaddr, id, now);
            }
        }
        Some(i)
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

/// An lblcr server set: members newest first (the kernel adds at the list
/// head), and when it last changed.
#[derive(Clone, Copy, Debug, Default)]
struct ServerSet {
    members: [DestId; Lblcr::SET_CAPACITY],
    len: u8,
    lastmod: u64,
}

impl ServerSet {
    fn members(&self) -> &[DestId] {
        &self.members[..usize::from(self.len).min(Lblcr::SET_CAPACITY)]
    }

    fn contains(&self, id: DestId) -> bool {
        self.members().contains(&id)
    }

    /// Adds `id` at the front (if absent and not full).
    fn push_front(&mut self, id: DestId, now: u64) {
        let len = usize::from(self.len);
        if self.contains(id) || len >= Lblcr::SET_CAPACITY {
            return;
        }
        self.members.copy_within(0..len, 1);
        self.members[0] = id;
        self.len += 1;
        self.lastmod = now;
    }

    fn remove_at(&mut self, pos: usize) {
        let len = usize::from(self.len);
        if pos < len {
            self.members.copy_within(pos + 1..len, pos);
            self.len -= 1;
        }
    }

    fn erase(&mut self, id: DestId, now: u64) {
        if let Some(pos) = self.members().iter().position(|&m| m == id) {
            self.remove_at(pos);
            self.lastmod = now;
        }
    }

    /// Drops members for which `keep` is false (not a modification).
    fn retain(&mut self, keep: impl Fn(DestId) -> bool) {
        let mut pos = 0;
        while pos < usize::from(self.len) {
            if keep(self.members[pos]) {
                pos += 1;
            } else {
                self.remove_at(pos);
            }
        }
    }
}

/// Locality-based least-connection scheduling with replication, as
/// `ip_vs_lblcr_schedule`.
///
/// Each destination (virtual) address maps to a set of servers. A pick
/// takes the set's least loaded member by `(active * 256 + inactive) /
/// weight` (usable members only; first in set order, newest first, on
/// ties). If there is none, or it is "overloaded" in lblc's sense (more
/// active connections than its weight while some server in the service is
/// below half of its weight), a server is chosen as by [`Wlc`](crate::Wlc)
/// and added to the set: a hot address is replicated onto more servers.
/// Sets shrink again: when a set of more than one member has not changed
/// for the expiration time, its most loaded member (weight > 0) is dropped
/// at the next pick for the address (`sysctl_lblcr_expiration`, 24 hours
/// by default; the kernel uses the same value for idle entries and for
/// shrinking).
///
/// The address table, its bounds and expiry are as for [`Lblc`]. A set
/// holds at most [`Lblcr::SET_CAPACITY`] servers (the kernel's sets are
/// unbounded lists); adding to a full set first drops its most loaded
/// member.
#[derive(Clone)]
pub struct Lblcr {
    pool: Pool,
    index: HashMap<DestId, u32>,
    table: Arc<Mutex<Lru<ServerSet>>>,
    expiration_ms: u64,
}

impl Lblcr {
    /// Addresses remembered by [`Lblcr::new`].
    pub const DEFAULT_CAPACITY: usize = DEFAULT_CAPACITY;
    /// Idle time after which [`Lblcr::new`] forgets an address, and time
    /// without change after which it shrinks a set (sysctl
    /// `lblcr_expiration`, 24 hours).
    pub const DEFAULT_EXPIRATION_MS: u64 = DEFAULT_EXPIRATION_MS;
    /// Most servers in one address's set.
    pub const SET_CAPACITY: usize = 16;

    /// An lblcr scheduler with the kernel's defaults and no destinations.
    pub fn new() -> Lblcr {
        Lblcr::with_params(DEFAULT_CAPACITY, DEFAULT_EXPIRATION_MS)
    }

    /// An lblcr scheduler remembering at most `capacity` addresses (at
    /// least 1); `expiration_ms` is both the idle time after which an
    /// address is forgotten and the time without change after which a set
    /// sheds its most loaded member.
    pub fn with_params(capacity: usize, expiration_ms: u64) -> Lblcr {
        Lblcr {
            pool: Pool::default(),
            index: HashMap::new(),
            table: Arc::new(Mutex::new(Lru::with_capacity(capacity))),
            expiration_ms,
        }
    }

    /// Addresses currently remembered.
    pub fn entries(&self) -> usize {
        self.table.lock().len()
    }

    /// The list indices of the servers in `addr`'s set, newest first (empty
    /// when the address is not remembered).
    pub fn set_of(&self, addr: &Addr) -> Vec<usize> {
        let mut t = self.table.lock();
        t.get_mut(addr).map_or_else(Vec::new, |s| {
            s.members()
                .iter()
                .filter_map(|id| self.index.get(id).map(|&i| i as usize))
                .collect()
        })
    }

    /// `ip_vs_dest_set_min`: the weighted least-loaded usable member.
    fn set_min(&self, set: &ServerSet, dests: &DestTable) -> Option<usize> {
        let mut least: Option<(usize, u64, i32)> = None;
        for id in set.members() {
            let Some(&i) = self.index.get(id) else {
                continue;
            };
            let i = i as usize;
            let (s, w) = (self.pool.slot(dests, i), self.pool.weight(i));
            if !usable(s, w) {
                continue;
            }
            let doh = conn_overhead(s);
            match least {
                Some((_, loh, lw)) if !heavier(loh, lw, doh, w) => {}
                _ => least = Some((i, doh, w)),
            }
        }
        least.map(|(i, _, _)| i)
    }

    /// `ip_vs_dest_set_max`: the weighted most-loaded member of weight > 0
    /// (overloaded or not).
    fn set_max(&self, set: &ServerSet, dests: &DestTable) -> Option<DestId> {
        let mut most: Option<(DestId, u64, i32)> = None;
        for &id in set.members() {
            let Some(&i) = self.index.get(&id) else {
                continue;
            };
            let i = i as usize;
            let w = self.pool.weight(i);
            if w <= 0 {
                continue;
            }
            let doh = conn_overhead(self.pool.slot(dests, i));
            match most {
                Some((_, moh, mw)) if !heavier(doh, w, moh, mw) => {}
                _ => most = Some((id, doh, w)),
            }
        }
        most.map(|(id, _, _)| id)
    }

    /// Adds `id` to a set, making room in a full set by dropping its most
    /// loaded member (or, if none has a weight, its oldest).
    fn add_member(&self, set: &mut ServerSet, id: DestId, dests: &DestTable, now: u64) {
        if set.contains(id) {
            return;
        }
        if usize::from(set.len) >= Lblcr::SET_CAPACITY {
            match self.set_max(set, dests) {
                Some(m) => set.erase(m, now),
                None => set.remove_at(usize::from(set.len) - 1),
            }
        }
        set.push_front(id, now);
    }
}

impl Default for Lblcr {
    fn default() -> Lblcr {
        Lblcr::new()
    }
}

impl fmt::Debug for Lblcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.table.try_lock().map(|t| t.len());
        f.debug_struct("Lblcr")
            .field("pool", &self.pool)
            .field("entries", &entries)
            .field("expiration_ms", &self.expiration_ms)
            .finish_non_exhaustive()
    }
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn update(&mut self, dests: &[DestInfo]) {
        self.pool = Pool::new(dests);
        self.index = index_of(dests);
    }

    fn pick(&self, cx: &mut PickCx<'_>, key: &ConnKey) -> Option<usize> {
        let (dests, now) = (cx.dests, cx.now_ms);
        let cached = {
            let mut t = self.table.lock();
            t.expire(now, self.expiration_ms);
            t.touch(&key.vaddr, now).map(|set| {
                set.retain(|id| self.index.contains_key(&id));
                let least = self.set_min(set, dests);
                // More than one member and no change for a while: shed the
                // most loaded one.
                if set.len > 1 && now > set.lastmod.saturating_add(self.expiration_ms) {
                    if let Some(m) = self.set_max(set, dests) {
                        set.erase(m, now);
                    }
                }
                least
            })
        };
        if let Some(Some(i)) = cached {
            if !locality_overloaded(&self.pool, dests, i) {
                return Some(i);
            }
        }
        // No entry, no usable member, or the best member is overloaded:
        // schedule and add the choice to the set.
        let i = least_weighted(&self.pool, dests, conn_overhead)?;
        let id = *self.pool.ids().get(i)?;
        let mut t = self.table.lock();
        match t.get_mut(&key.vaddr) {
            Some(set) => self.add_member(set, id, dests, now),
            None => {
                let mut set = ServerSet::default();
                set.push_front(id, now);
                t.insert(key.vaddr, set, now);
            }
        }
        Some(i)
    }

    fn clone_box(&self) -> Box<dyn Scheduler> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PickState;
    use crate::testutil::*;

    const DAY: u64 = 24 * 60 * 60 * 1000;

    fn at(lab: &Lab, s: &dyn Scheduler, now: u64, vip: u32) -> Option<usize> {
        lab.pick_at(s, &mut PickState::default(), now, &key(vip * 7, vip))
    }

    #[test]
    fn lblc_sticks_to_the_remembered_server() {
        let lab = Lab::new(&[10, 10, 10]);
        let mut s = Lblc::new();
        s.update(&lab.infos);
        lab.counts(0, 3, 0);
        lab.counts(2, 1, 0);
        assert_eq!(at(&lab, &s, 0, 1), Some(1), "new address: wlc");
        lab.counts(1, 5, 0);
        assert_eq!(
            at(&lab, &s, 1, 1),
            Some(1),
            "remembered, though no longer least loaded"
        );
        assert_eq!(at(&lab, &s, 2, 2), Some(2), "another address: wlc");
        assert_eq!(s.entries(), 2);
        // Clients do not matter, only the destination address.
        let mut st = PickState::default();
        assert!((0..50).all(|c| lab.pick_at(&s, &mut st, 3, &key(c, 1)) == Some(1)));
    }

    #[test]
    fn lblc_moves_an_overloaded_address_only_when_someone_is_below_half() {
        let lab = Lab::new(&[4, 4]);
        let mut s = Lblc::new();
        s.update(&lab.infos);
        assert_eq!(at(&lab, &s, 0, 1), Some(0));
        lab.counts(0, 5, 0); // active 5 > weight 4
        lab.counts(1, 2, 0); // 2 * 2 < 4? no
        assert_eq!(
            at(&lab, &s, 1, 1),
            Some(0),
            "nobody below half its weight: stay"
        );
        lab.counts(1, 1, 0); // 1 * 2 < 4
        assert_eq!(at(&lab, &s, 2, 1), Some(1), "moved");
        lab.counts(0, 0, 0);
        assert_eq!(at(&lab, &s, 3, 1), Some(1), "and remembered there");
    }

    #[test]
    fn lblc_reschedules_when_the_server_may_not_take_it() {
        let lab = Lab::new(&[1, 1, 1]);
        let mut s = Lblc::new();
        s.update(&lab.infos);
        assert_eq!(at(&lab, &s, 0, 1), Some(0));
        lab.set_overloaded(0, true);
        assert_eq!(at(&lab, &s, 1, 1), Some(1), "overload flag");
        lab.set_overloaded(0, false);
        lab.counts(0, 0, 0);
        let mut infos = lab.infos.clone();
        infos[1].weight = 0;
        s.update(&infos);
        assert_eq!(
            at(&lab, &s, 2, 1),
            Some(0),
            "quiesced; update kept the table"
        );
        lab.counts(0, 0, 9);
        s.update(&infos[..1]);
        assert_eq!(at(&lab, &s, 3, 1), Some(0));
        let moved: Vec<_> = infos[2..].to_vec();
        s.update(&moved);
        assert_eq!(
            at(&lab, &s, 4, 1),
            Some(0),
            "A removed: the only one left (C) is index 0"
        );
    }

    #[test]
    fn lblc_forgets_after_the_expiration() {
        let lab = Lab::new(&[1, 1]);
        let mut s = Lblc::new();
        s.update(&lab.infos);
        assert_eq!(at(&lab, &s, 1000, 1), Some(0));
        lab.counts(0, 1, 0);
        assert_eq!(
            at(&lab, &s, 1000 + DAY - 1, 1),
            Some(0),
            "used again just in time"
        );
        assert_eq!(at(&lab, &s, 1000 + 2 * DAY - 2, 1), Some(0));
        assert_eq!(
            at(&lab, &s, 1000 + 3 * DAY - 2, 1),
            Some(1),
            "idle a day: forgotten, wlc again"
        );
    }

    #[test]
    fn lblc_table_is_bounded_and_shared_by_clones() {
        let lab = Lab::new(&[1, 1]);
        let mut s = Lblc::with_params(4, DAY);
        s.update(&lab.infos);
        let clone = s.clone_box();
        for vip in 0..10 {
            at(&lab, clone.as_ref(), vip.into(), vip);
        }
        assert_eq!(s.entries(), 4);
        assert_eq!(s.capacity(), 4);
        assert!(format!("{s:?}").contains("entries: Some(4)"));
    }

    #[test]
    fn lblcr_replicates_a_hot_address_and_picks_the_least_loaded_member() {
        let lab = Lab::new(&[4, 4, 4]);
        let mut s = Lblcr::new();
        s.update(&lab.infos);
        let vip = key(0, 1).vaddr;
        assert_eq!(at(&lab, &s, 0, 1), Some(0));
        assert_eq!(s.set_of(&vip), [0]);
        lab.counts(0, 5, 0); // over its weight
        lab.counts(1, 3, 0); // not below half
        lab.counts(2, 1, 0); // below half: A is "overloaded"
        assert_eq!(at(&lab, &s, 10, 1), Some(2), "wlc choice joins the set");
        assert_eq!(s.set_of(&vip), [2, 0], "newest first");
        lab.counts(2, 4, 0);
        lab.counts(0, 3, 0);
        assert_eq!(
            at(&lab, &s, 20, 1),
            Some(0),
            "least loaded member of {{C, A}}"
        );
        lab.counts(0, 4, 0);
        assert_eq!(at(&lab, &s, 21, 1), Some(2), "tie: first in set order");
        lab.set_overloaded(2, true);
        assert_eq!(
            at(&lab, &s, 22, 1),
            Some(0),
            "overloaded members are skipped"
        );
        assert_eq!(s.set_of(&vip), [2, 0], "but stay in the set");
    }

    #[test]
    fn lblcr_sets_shrink_after_the_expiration() {
        let lab = Lab::new(&[4, 4, 4]);
        let mut s = Lblcr::new();
        s.update(&lab.infos);
        let vip = key(0, 1).vaddr;
        at(&lab, &s, 0, 1);
        lab.counts(0, 5, 0); // over its weight
        lab.counts(1, 1, 0); // below half its weight
        lab.counts(2, 2, 0);
        assert_eq!(at(&lab, &s, 1000, 1), Some(1));
        lab.counts(1, 5, 0);
        lab.counts(2, 0, 0);
        assert_eq!(at(&lab, &s, 2000, 1), Some(2));
        assert_eq!(s.set_of(&vip), [2, 1, 0], "lastmod = 2000");
        lab.counts(0, 2, 0);
        lab.counts(1, 3, 0);
        lab.counts(2, 1, 0);
        // Used every hour, never modified: no shrink until a day has passed.
        for h in 1..24 {
            assert_eq!(at(&lab, &s, 2000 + h * DAY / 24, 1), Some(2));
            assert_eq!(s.set_of(&vip).len(), 3);
        }
        assert_eq!(
            at(&lab, &s, 2000 + DAY, 1),
            Some(2),
            "exactly a day: not yet (time_after)"
        );
        assert_eq!(s.set_of(&vip).len(), 3);
        assert_eq!(at(&lab, &s, 2001 + DAY, 1), Some(2));
        assert_eq!(
            s.set_of(&vip),
            [2, 0],
            "B, the most loaded, dropped; lastmod = now"
        );
        assert_eq!(at(&lab, &s, 2002 + DAY, 1), Some(2));
        assert_eq!(s.set_of(&vip), [2, 0], "just modified: no further shrink");
        assert_eq!(at(&lab, &s, 2002 + 2 * DAY, 1), Some(2));
        assert_eq!(s.set_of(&vip), [2], "A dropped a day later");
        assert_eq!(at(&lab, &s, 2001 + 3 * DAY, 1), Some(2));
        assert_eq!(s.set_of(&vip), [2], "a single member is kept");
    }

    #[test]
    fn lblcr_shrink_with_a_custom_expiration() {
        let lab = Lab::new(&[2, 2]);
        let mut s = Lblcr::with_params(16, 6 * 60 * 1000);
        s.update(&lab.infos);
        let vip = key(0, 1).vaddr;
        at(&lab, &s, 0, 1);
        lab.counts(0, 3, 0);
        assert_eq!(at(&lab, &s, 1, 1), Some(1));
        assert_eq!(s.set_of(&vip), [1, 0]);
        lab.counts(1, 1, 0);
        const MIN: u64 = 60 * 1000;
        assert_eq!(at(&lab, &s, 3 * MIN, 1), Some(1), "used, not modified");
        assert_eq!(s.set_of(&vip), [1, 0]);
        assert_eq!(at(&lab, &s, 6 * MIN + 2, 1), Some(1));
        assert_eq!(
            s.set_of(&vip),
            [1],
            "A shed six minutes after the last change"
        );
        // Idle for the expiration: the address is forgotten.
        assert_eq!(at(&lab, &s, 13 * MIN, 99), Some(1));
        assert_eq!(s.entries(), 1, "address 1 expired, address 99 is in");
        assert!(s.set_of(&vip).is_empty());
    }

    #[test]
    fn lblcr_sets_are_bounded() {
        let n = Lblcr::SET_CAPACITY + 8;
        let lab = Lab::new(&vec![2; n]);
        let mut s = Lblcr::new();
        s.update(&lab.infos);
        let vip = key(0, 1).vaddr;
        // Load each chosen server past its weight so the next pick adds one more.
        for step in 0..n as u64 {
            let i = at(&lab, &s, step, 1).unwrap();
            lab.counts(i, 3, 0);
        }
        assert_eq!(s.set_of(&vip).len(), Lblcr::SET_CAPACITY);
        // Removed servers leave the set.
        s.update(&lab.infos[..4]);
        at(&lab, &s, 100, 1);
        assert!(s.set_of(&vip).iter().all(|&i| i < 4));
    }

    #[test]
    fn shared_table_under_concurrent_workers() {
        let lab = Lab::new(&[1, 2, 3, 4]);
        let mut s = Lblcr::with_params(64, DAY);
        s.update(&lab.infos);
        std::thread::scope(|scope| {
            for w in 0..4u32 {
                let (s, lab) = (&s, &lab);
                scope.spawn(move || {
                    let mut st = PickState::default();
                    for c in 0..2000u32 {
                        let got = lab.pick_at(s, &mut st, u64::from(c), &key(c, (c + w) % 100));
                        assert!(got.is_some_and(|i| i < 4));
                    }
                });
            }
        });
        assert_eq!(s.entries(), 64);
    }
}
