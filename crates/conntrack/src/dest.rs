//! Per-destination connection counters shared by workers, the control
//! plane and the schedulers.
//!
//! IPVS keeps `activeconns`, `inactconns` and `persistconns` on each
//! destination and raises an overload flag from the upper/lower connection
//! thresholds (`-x`/`-y`). Here they live in one fixed arena indexed by a
//! [`DestId`] that the control plane allocates: the connection table updates
//! them on bind, state change and unbind (so the counts follow IPVS's rules
//! in one place), schedulers read them, and nothing on the packet path
//! allocates or locks to reach them.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::Relaxed};

/// Index of a destination's slot in a [`DestTable`].
pub type DestId = u32;

/// One destination's shared counters and the settings the connection table
/// needs from it.
#[derive(Debug, Default)]
pub struct DestSlot {
    active: AtomicU32,
    inactive: AtomicU32,
    persist: AtomicU32,
    overloaded: AtomicBool,
    available: AtomicBool,
    weight: AtomicI32,
    u_threshold: AtomicU32,
    l_threshold: AtomicU32,
}

impl DestSlot {
    /// Active connections (TCP in ESTABLISHED or a pre-established state).
    #[inline]
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    /// Inactive connections (every other TCP state, and all UDP).
    #[inline]
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }

    /// Persistence templates pointing at this destination.
    #[inline]
    pub fn persistent(&self) -> u32 {
        self.persist.load(Relaxed)
    }

    /// Whether the upper threshold was reached and the lower one not yet
    /// passed back: schedulers skip an overloaded destination.
    #[inline]
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }

    /// Whether the destination is configured (not deleted).
    #[inline]
    pub fn is_available(&self) -> bool {
        self.available.load(Relaxed)
    }

    /// Current weight, as the control plane last set it.
    #[inline]
    pub fn weight(&self) -> i32 {
        self.weight.load(Relaxed)
    }

    /// Upper connection threshold (`-x`), 0 = none.
    #[inline]
    pub fn upper_threshold(&self) -> u32 {
        self.u_threshold.load(Relaxed)
    }

    /// Lower connection threshold (`-y`), 0 = none.
    #[inline]
    pub fn lower_threshold(&self) -> u32 {
        self.l_threshold.load(Relaxed)
    }

    /// IPVS's `ip_vs_dest_totalconns`: active + inactive.
    #[inline]
    pub fn total(&self) -> u32 {
        self.active().wrapping_add(self.inactive())
    }

    pub(crate) fn bind(&self, template: bool, active: bool) {
        if template {
            self.persist.fetch_add(1, Relaxed);
        } else if active {
            self.active.fetch_add(1, Relaxed);
        } else {
            self.inactive.fetch_add(1, Relaxed);
        }
        let u = self.upper_threshold();
        if u != 0 && self.total() >= u {
            self.overloaded.store(true, Relaxed);
        }
    }

    pub(crate) fn unbind(&self, template: bool, active: bool) {
        let ctr = if template {
            &self.persist
        } else if active {
            &self.active
        } else {
            &self.inactive
        };
        // Saturating: a counter never wraps below zero even if the control
        // plane reset a slot while connections still pointed at it.
        let _ = ctr.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
        self.relax_overload();
    }

    pub(crate) fn activate(&self, now_active: bool) {
        let (from, to) = if now_active {
            (&self.inactive, &self.active)
        } else {
            (&self.active, &self.inactive)
        };
        let _ = from.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
        to.fetch_add(1, Relaxed);
    }

    /// IPVS's rule for clearing the overload flag on unbind.
    fn relax_overload(&self) {
        let l = self.lower_threshold();
        let u = self.upper_threshold();
        let total = u64::from(self.total());
        let clear = if l != 0 {
            total < u64::from(l)
        } else if u != 0 {
            total * 4 < u64::from(u) * 3
        } else {
            true
        };
        if clear {
            self.overloaded.store(false, Relaxed);
        }
    }
}

/// A fixed arena of destination slots.
///
/// The control plane owns slot allocation ([`DestTable::configure`],
/// [`DestTable::retire`]); a slot keeps its counters while connections still
/// point at a retired destination (IPVS's destination trash), and is only
/// handed out again by the control plane once [`DestSlot::total`] and
/// [`DestSlot::persistent`] are zero.
#[derive(Debug)]
pub struct DestTable {
    slots: Box<[DestSlot]>,
}

impl DestTable {
    /// An arena of `n` slots.
    pub fn new(n: usize) -> DestTable {
        DestTable {
            slots: (0..n).map(|_| DestSlot::default()).collect(),
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the arena has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot of `id`. Out-of-range ids get a shared, always-unavailable
    /// slot, so a stale id never panics on the packet path.
    #[inline]
    pub fn get(&self, id: DestId) -> &DestSlot {
        static NONE: DestSlot = DestSlot {
            active: AtomicU32::new(0),
            inactive: AtomicU32::new(0),
            persist: AtomicU32::new(0),
            overloaded: AtomicBool::new(false),
            available: AtomicBool::new(false),
            weight: AtomicI32::new(0),
            u_threshold: AtomicU32::new(0),
            l_threshold: AtomicU32::new(0),
        };
        self.slots.get(id as usize).unwrap_or(&NONE)
    }

    /// Marks `id` configured with its weight and thresholds (add or edit of
    /// a real server). Counters are kept.
    pub fn configure(&self, id: DestId, weight: i32, upper: u32, lower: u32) {
        if let Some(s) = self.slots.get(id as usize) {
            s.weight.store(weight, Relaxed);
            s.u_threshold.store(upper, Relaxed);
            s.l_threshold.store(lower, Relaxed);
            s.available.store(true, Relaxed);
            let total = s.total();
            if upper != 0 && total >= upper {
                s.overloaded.store(true, Relaxed);
            } else {
                s.relax_overload();
            }
        }
    }

    /// Marks `id` deleted: no new connections; existing ones follow
    /// `expire_nodest_conn`.
    pub fn retire(&self, id: DestId) {
        if let Some(s) = self.slots.get(id as usize) {
            s.available.store(false, Relaxed);
        }
    }

    /// Whether a retired slot has no connections or templates left and can be
    /// reused for a new destination.
    pub fn is_free(&self, id: DestId) -> bool {
        let s = self.get(id);
        !s.is_available() && s.total() == 0 && s.persistent() == 0
    }

    /// Test and tooling helper: sets the counters directly.
    pub fn set_counts(&self, id: DestId, active: u32, inactive: u32) {
        if let Some(s) = self.slots.get(id as usize) {
            s.active.store(active, Relaxed);
            s.inactive.store(inactive, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_hysteresis_follows_ipvs() {
        let t = DestTable::new(4);
        t.configure(1, 1, 4, 2);
        let s = t.get(1);
        for _ in 0..4 {
            assert!(!s.is_overloaded());
            s.bind(false, false);
        }
        assert!(s.is_overloaded(), "reaching -x 4 overloads");
        s.unbind(false, false); // 3
        assert!(s.is_overloaded(), "still >= -y 2");
        s.unbind(false, false); // 2
        assert!(s.is_overloaded());
        s.unbind(false, false); // 1 < 2
        assert!(!s.is_overloaded());
    }

    #[test]
    fn overload_without_lower_uses_three_quarters() {
        let t = DestTable::new(1);
        t.configure(0, 1, 8, 0);
        let s = t.get(0);
        for _ in 0..8 {
            s.bind(false, true);
        }
        assert!(s.is_overloaded());
        s.unbind(false, true); // 7: 28 < 24? no
        s.unbind(false, true); // 6: 24 < 24? no
        assert!(s.is_overloaded());
        s.unbind(false, true); // 5: 20 < 24
        assert!(!s.is_overloaded());
    }

    #[test]
    fn stale_id_is_unavailable_not_a_panic() {
        let t = DestTable::new(2);
        assert!(!t.get(99).is_available());
        t.configure(99, 1, 0, 0);
        t.retire(99);
        assert!(t.is_free(99));
    }
}
