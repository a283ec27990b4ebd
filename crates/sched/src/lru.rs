//! The bounded address table behind lblc and lblcr: a hash index over a
//! fixed arena of entries chained in least-recently-used order.
//!
//! Everything is allocated at construction. The arena never grows; the
//! index is a hashbrown map reserved for twice the arena, so an insert never
//! reallocates it (hashbrown rehashes in place instead of growing while at
//! most half of its capacity is live). When the arena is full, an insert
//! evicts the least recently used entry. Entries are stamped with a
//! monotonic "last use" time, so the list is also in age order and
//! expiring idle entries pops them from the old end.
//!
//! Invariant: `nodes.len()` is fixed at construction, and every node number
//! held anywhere (`head`, `tail`, `free`, the `prev`/`next` links, the
//! values of `index`) is either `NIL` or below it; a node is either on the
//! use list and in `index`, or on the free list. The indexing below relies
//! on this and cannot go out of bounds.

use hashbrown::HashMap;
use xvs_conntrack::Addr;

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node<V> {
    key: Addr,
    lastuse: u64,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end (or the next free node).
    next: u32,
    val: V,
}

/// A map from address to `V` of fixed capacity, oldest entries evicted.
#[derive(Clone, Debug)]
pub(crate) struct Lru<V> {
    nodes: Vec<Node<V>>,
    index: HashMap<Addr, u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    /// First free node, chained through `next`.
    free: u32,
    /// Newest stamp handed out: stamps never go backwards even if callers'
    /// clocks disagree by a little.
    latest: u64,
}

impl<V: Copy + Default> Lru<V> {
    /// A table of `capacity` entries (at least 1, at most 2^31).
    pub(crate) fn with_capacity(capacity: usize) -> Lru<V> {
        let cap = capacity.clamp(1, 1 << 31);
        let nodes = (0..cap)
            .map(|i| Node {
                key: Addr::UNSPECIFIED,
                lastuse: 0,
                prev: NIL,
                next: if i + 1 < cap { (i + 1) as u32 } else { NIL },
                val: V::default(),
            })
            .collect();
        Lru {
            nodes,
            index: HashMap::with_capacity(2 * cap),
            head: NIL,
            tail: NIL,
            free: 0,
            latest: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn stamp(&mut self, now: u64) -> u64 {
        self.latest = self.latest.max(now);
        self.latest
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        let node = &mut self.nodes[i as usize];
        node.prev = NIL;
        node.next = old;
        match old {
            NIL => self.tail = i,
            h => self.nodes[h as usize].prev = i,
        }
        self.head = i;
    }

    fn remove_node(&mut self, i: u32) {
        self.unlink(i);
        let key = self.nodes[i as usize].key;
        self.index.remove(&key);
        self.nodes[i as usize].next = self.free;
        self.free = i;
    }

    /// Drops the entries unused for at least `ttl` ms (`lastuse + ttl <=
    /// now`), oldest first; returns how many.
    pub(crate) fn expire(&mut self, now: u64, ttl: u64) -> usize {
        let mut n = 0;
        while self.tail != NIL && self.nodes[self.tail as usize].lastuse.saturating_add(ttl) <= now
        {
            self.remove_node(self.tail);
            n += 1;
        }
        n
    }

    /// The value for `key`, marked used at `now`.
    pub(crate) fn touch(&mut self, key: &Addr, now: u64) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        let t = self.stamp(now);
        self.nodes[i as usize].lastuse = t;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&mut self.nodes[i as usize].val)
    }

    /// The value for `key`, not marking it used.
    pub(crate) fn get_mut(&mut self, key: &Addr) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        Some(&mut self.nodes[i as usize].val)
    }

    /// Inserts `key` (which must not be present) as the most recently used
    /// entry, evicting the least recently used one when full.
    pub(crate) fn insert(&mut self, key: Addr, val: V, now: u64) -> &mut V {
        debug_assert!(!self.index.contains_key(&key));
        if self.free == NIL {
            self.remove_node(self.tail);
        }
        let i = self.free;
        self.free = self.nodes[i as usize].next;
        let t = self.stamp(now);
        let node = &mut self.nodes[i as usize];
        node.key = key;
        node.lastuse = t;
        node.val = val;
        self.push_front(i);
        self.index.insert(key, i);
        &mut self.nodes[i as usize].val
    }

    /// Entries from most to least recently used (for tests and dumps).
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Addr, u64, &V)> {
        let mut i = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(i as usize)?;
            i = node.next;
            Some((node.key, node.lastuse, &node.val))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(x: u8) -> Addr {
        Addr::v4([10, 0, 0, x])
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let mut t: Lru<u32> = Lru::with_capacity(3);
        t.insert(a(1), 1, 10);
        t.insert(a(2), 2, 20);
        t.insert(a(3), 3, 30);
        assert_eq!(t.touch(&a(1), 40).copied(), Some(1));
        t.insert(a(4), 4, 50); // evicts 2, the least recently used
        assert!(t.touch(&a(2), 60).is_none());
        let keys: Vec<_> = t.iter().map(|(k, _, _)| k).collect();
        assert_eq!(keys, [a(4), a(1), a(3)]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn expires_idle_entries_oldest_first() {
        let mut t: Lru<u32> = Lru::with_capacity(8);
        for x in 0..5u8 {
            t.insert(a(x), u32::from(x), 100 * u64::from(x));
        }
        t.touch(&a(0), 450);
        assert_eq!(t.expire(500, 300), 2, "entries used at 100 and 200");
        assert_eq!(t.len(), 3);
        assert!(
            t.get_mut(&a(2)).is_none(),
            "200 + 300 <= 500: gone, like the kernel's !time_before"
        );
        assert!(t.get_mut(&a(3)).is_some());
        assert_eq!(t.expire(501, 300), 0);
        assert_eq!(t.expire(10_000, 300), 3);
        assert_eq!(t.len(), 0);
        t.insert(a(9), 9, 10_000);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn never_reallocates_after_construction() {
        let mut t: Lru<u32> = Lru::with_capacity(1000);
        let (cap, index_bytes) = (t.nodes.capacity(), t.index.allocation_size());
        for round in 0..50u64 {
            for x in 0..1000u32 {
                let k = Addr::v4((x + 1000 * round as u32).to_be_bytes());
                t.insert(k, x, round * 1000 + u64::from(x));
            }
            t.expire(round * 1000 + 500, 0);
        }
        assert_eq!(t.nodes.capacity(), cap);
        assert_eq!(
            t.index.allocation_size(),
            index_bytes,
            "rehashed in place, never grown"
        );
    }

    proptest! {
        /// Against a plain model: same contents, same eviction victims.
        #[test]
        fn behaves_like_a_model(ops in prop::collection::vec((0u8..3, 0u8..12), 1..400)) {
            let mut t: Lru<u8> = Lru::with_capacity(5);
            let mut model: Vec<(u8, u64)> = Vec::new(); // key, lastuse
            for (now, (op, k)) in ops.into_iter().enumerate() {
                let now = now as u64;
                match op {
                    0 => {
                        let hit = t.touch(&a(k), now).copied();
                        let pos = model.iter().position(|e| e.0 == k);
                        prop_assert_eq!(hit, pos.map(|_| k));
                        if let Some(p) = pos { model[p].1 = now; }
                        if hit.is_none() {
                            if model.len() == 5 {
                                let oldest = model.iter().enumerate().min_by_key(|e| e.1.1).unwrap().0;
                                model.remove(oldest);
                            }
                            t.insert(a(k), k, now);
                            model.push((k, now));
                        }
                    }
                    1 => {
                        let n = t.expire(now, 6);
                        let before = model.len();
                        model.retain(|e| e.1 + 6 > now);
                        prop_assert_eq!(n, before - model.len());
                    }
                    _ => prop_assert_eq!(t.get_mut(&a(k)).is_some(), model.iter().any(|e| e.0 == k)),
                }
                prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
