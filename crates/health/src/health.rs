//! The rise/fall state machine of one target: pure, fed check results.
//!
//! ```text
//!            fall failures in a row
//!   ┌────┐ ─────────────────────────▶ ┌──────┐
//!   │ UP │                            │ DOWN │
//!   └────┘ ◀───────────────────────── └──────┘
//!            rise successes in a row
//!            (alpha: the first success ever)
//! ```
//!
//! A target starts up, or down with `alpha`. While up, a success whose
//! dynamic weight differs from the last one reported is also a change (the
//! state stays up, the weight moves).

/// What [`Health::record`] reports when the state (or, while up, the
/// dynamic weight) changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) up: bool,
    pub(crate) weight: Option<u32>,
}

/// The state and counters of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Health {
    pub(crate) up: bool,
    /// Successes in a row (0 after a failure).
    pub(crate) ok_run: u32,
    /// Failures in a row (0 after a success).
    pub(crate) fail_run: u32,
    pub(crate) total_ok: u64,
    pub(crate) total_failed: u64,
    /// The dynamic weight last reported (`None` while down or when the
    /// check has no dynamic weight).
    pub(crate) weight: Option<u32>,
    /// An alpha target that has not passed a check yet.
    awaiting_first: bool,
}

impl Health {
    pub(crate) fn new(alpha: bool) -> Health {
        Health {
            up: !alpha,
            ok_run: 0,
            fail_run: 0,
            total_ok: 0,
            total_failed: 0,
            weight: None,
            awaiting_first: alpha,
        }
    }

    /// The state carried over when a target's check or timing changes:
    /// up or down and the weight stay (so the caller's view stays right
    /// without a transition), the runs start again.
    pub(crate) fn carried(&self) -> Health {
        Health {
            ok_run: 0,
            fail_run: 0,
            ..self.clone()
        }
    }

    /// Records one check result (`weight` is the dynamic weight of a
    /// success) and returns the change it makes, if any.
    pub(crate) fn record(
        &mut self,
        ok: bool,
        weight: Option<u32>,
        rise: u16,
        fall: u16,
    ) -> Option<Change> {
        if ok {
            self.total_ok += 1;
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
            if !self.up {
                if self.awaiting_first || self.ok_run >= u32::from(rise.max(1)) {
                    self.up = true;
                    self.awaiting_first = false;
                    self.weight = weight;
                    return Some(Change { up: true, weight });
                }
                return None;
            }
            if weight != self.weight {
                self.weight = weight;
                return Some(Change { up: true, weight });
            }
            None
        } else {
            self.total_failed += 1;
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
            if self.up && self.fail_run >= u32::from(fall.max(1)) {
                self.up = false;
                self.weight = None;
                return Some(Change {
                    up: false,
                    weight: None,
                });
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UP: Option<Change> = Some(Change {
        up: true,
        weight: None,
    });
    const DOWN: Option<Change> = Some(Change {
        up: false,
        weight: None,
    });

    #[test]
    fn fall_then_rise() {
        let mut h = Health::new(false);
        assert!(h.up);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(true, None, 2, 3), None); // the run restarts
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(false, None, 2, 3), DOWN);
        assert_eq!(h.record(false, None, 2, 3), None);
        assert_eq!(h.record(true, None, 2, 3), None);
        assert_eq!(h.record(true, None, 2, 3), UP);
        assert_eq!(h.record(true, None, 2, 3), None);
        assert_eq!((h.total_ok, h.total_failed), (4, 5));
    }

    #[test]
    fn alpha_starts_down_and_comes_up_at_first_success() {
        let mut h = Health::new(true);
        assert!(!h.up);
        assert_eq!(h.record(false, None, 3, 1), None);
        assert_eq!(h.record(true, None, 3, 1), UP);
        assert_eq!(h.record(false, None, 3, 1), DOWN);
        assert_eq!(h.record(true, None, 3, 1), None); // rise applies from now on
        assert_eq!(h.record(true, None, 3, 1), None);
        assert_eq!(h.record(true, None, 3, 1), UP);
    }

    #[test]
    fn dynamic_weight_changes_while_up() {
        let mut h = Health::new(false);
        let w = |n| {
            Some(Change {
                up: true,
                weight: Some(n),
            })
        };
        assert_eq!(h.record(true, Some(5), 1, 1), w(5));
        assert_eq!(h.record(true, Some(5), 1, 1), None);
        assert_eq!(h.record(true, Some(7), 1, 1), w(7));
        assert_eq!(h.record(true, None, 1, 1), UP); // exit 0: back to the configured weight
        assert_eq!(h.record(false, None, 1, 1), DOWN);
        assert_eq!(h.record(true, Some(3), 1, 1), w(3));
    }

    #[test]
    fn carried_keeps_state_and_restarts_runs() {
        let mut h = Health::new(false);
        h.record(false, None, 1, 1);
        h.record(true, None, 2, 1);
        let c = h.carried();
        assert_eq!((c.up, c.ok_run, c.fail_run, c.total_ok), (false, 0, 0, 1));
    }

    proptest! {
        /// Changes alternate up/down (weight-only changes aside), each
        /// down follows `fall` failures in a row and each up `rise`
        /// successes in a row.
        #[test]
        fn changes_follow_runs(results in proptest::collection::vec(any::<bool>(), 0..200),
                               rise in 1u16..5, fall in 1u16..5) {
            let mut h = Health::new(false);
            let (mut up, mut ok_run, mut fail_run) = (true, 0u32, 0u32);
            for ok in results {
                if ok { ok_run += 1; fail_run = 0 } else { fail_run += 1; ok_run = 0 }
                match h.record(ok, None, rise, fall) {
                    Some(c) => {
                        prop_assert_ne!(c.up, up);
                        if c.up { prop_assert_eq!(ok_run, u32::from(rise)) }
                        else { prop_assert_eq!(fail_run, u32::from(fall)) }
                        up = c.up;
                    }
                    None => prop_assert_eq!(h.up, up),
                }
            }
        }
    }
}
