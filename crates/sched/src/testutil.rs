//! Test fixtures: a destination table with its scheduler view, and flows.

use xvs_conntrack::{Addr, ConnKey, DestTable, Proto};

use crate::{DestInfo, PickCx, PickState, Scheduler};

/// A flow from client `10.c.c.c` (host-order `c`) port `40000 + c` to VIP
/// `198.51.v.v`.
pub(crate) fn key(c: u32, v: u32) -> ConnKey {
    ConnKey {
        proto: Proto::Tcp,
        caddr: Addr::v4((0x0a00_0000 | (c & 0x00ff_ffff)).to_be_bytes()),
        cport: 40000u16.wrapping_add(c as u16),
        vaddr: Addr::v4((0xc633_0000 | (v & 0xffff)).to_be_bytes()),
        vport: 80,
    }
}

/// Destinations `0..n` with the given weights, real servers `172.16.i/8.i:80`,
/// every slot configured without thresholds.
pub(crate) struct Lab {
    pub(crate) table: DestTable,
    pub(crate) infos: Vec<DestInfo>,
}

impl Lab {
    pub(crate) fn new(weights: &[i32]) -> Lab {
        let table = DestTable::new(weights.len().max(1));
        let infos = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                table.configure(i as u32, w, 0, 0);
                DestInfo {
                    id: i as u32,
                    addr: Addr::v4([172, 16, (i >> 8) as u8, i as u8]),
                    port: 80,
                    weight: w,
                }
            })
            .collect();
        Lab { table, infos }
    }

    /// Sets destination `i`'s counters (weight and thresholds unchanged).
    pub(crate) fn counts(&self, i: usize, active: u32, inactive: u32) {
        self.table.set_counts(i as u32, active, inactive);
    }

    /// Raises or clears `i`'s overload flag through the upper threshold the
    /// way the connection table does. Raising it on an idle destination
    /// gives it one inactive connection (a threshold needs a count to reach).
    pub(crate) fn set_overloaded(&self, i: usize, on: bool) {
        let id = i as u32;
        let s = self.table.get(id);
        let w = s.weight();
        if on {
            if s.total() == 0 {
                self.table.set_counts(id, s.active(), 1);
            }
            self.table.configure(id, w, s.total(), 0);
        } else {
            self.table.configure(id, w, 0, 0);
        }
        assert_eq!(self.table.get(id).is_overloaded(), on);
    }

    pub(crate) fn pick_at(
        &self,
        s: &dyn Scheduler,
        st: &mut PickState,
        now_ms: u64,
        k: &ConnKey,
    ) -> Option<usize> {
        let mut cx = PickCx {
            dests: &self.table,
            now_ms,
            state: st,
        };
        s.pick(&mut cx, k)
    }

    pub(crate) fn pick_with(
        &self,
        s: &dyn Scheduler,
        st: &mut PickState,
        k: &ConnKey,
    ) -> Option<usize> {
        self.pick_at(s, st, 0, k)
    }

    /// `n` picks of one flow with one state.
    pub(crate) fn pick_n(&self, s: &dyn Scheduler, n: usize) -> Vec<Option<usize>> {
        let mut st = PickState::default();
        (0..n)
            .map(|_| self.pick_with(s, &mut st, &key(1, 1)))
            .collect()
    }

    /// `n` picks of different flows (client and VIP vary) with one state.
    pub(crate) fn pick_varied(&self, s: &dyn Scheduler, n: usize) -> Vec<Option<usize>> {
        let mut st = PickState::default();
        (0..n as u32)
            .map(|c| self.pick_with(s, &mut st, &key(c.wrapping_mul(2_654_435_761), c)))
            .collect()
    }
}

/// Picks rendered as letters (`A` = index 0), `-` for `None`.
pub(crate) fn letters(picks: &[Option<usize>]) -> String {
    picks
        .iter()
        .map(|p| p.map_or('-', |i| char::from(b'A' + i as u8)))
        .collect()
}
