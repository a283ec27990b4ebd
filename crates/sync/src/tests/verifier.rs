//! The backup's checks: replay window, senders, sync id, clock, counters.

use proptest::prelude::*;

use super::*;
use crate::verifier::{REPLAY_WINDOW, Window};
use crate::{RecvStats, Reject, Verifier, VerifierConfig};

fn verifier() -> Verifier {
    Verifier::new(key(), VerifierConfig::default())
}

/// Every datagram counts once in `received` and once in one outcome.
fn assert_balanced(s: &RecvStats) {
    assert_eq!(
        s.received,
        s.accepted + s.malformed + s.bad_mac + s.wrong_syncid + s.stale + s.replayed + s.too_old,
        "{s:?}"
    );
}

#[test]
fn same_datagram_twice_is_accepted_once() {
    let mut ver = verifier();
    let d = &series(1, 1, 0)[0];
    let got: Vec<_> = ver.verify(d, NOW).unwrap().entries().collect();
    assert_eq!(got, [v4(0)]);
    assert_eq!(
        ver.verify(d, NOW).unwrap_err(),
        Reject::Replayed { sender: 1, seq: 0 }
    );
    assert_eq!(
        ver.verify(d, NOW + 1000).unwrap_err(),
        Reject::Replayed { sender: 1, seq: 0 }
    );
    let s = ver.stats();
    assert_eq!((s.accepted, s.entries, s.replayed), (1, 1, 2));
    assert_eq!(s.new_senders, 1);
    assert_balanced(s);
}

#[test]
fn reordered_within_the_window_all_accepted() {
    let ds = series(2, 300, 0);
    let mut ver = verifier();
    // Odd ones first, then the even ones backwards: every one is late but
    // within the window.
    let order: Vec<usize> = (0..300)
        .filter(|i| i % 2 == 1)
        .chain((0..300).filter(|i| i % 2 == 0).rev())
        .collect();
    let mut got = Vec::new();
    for &i in &order {
        got.extend(ver.verify(&ds[i], NOW).unwrap().entries());
    }
    assert_eq!(got.len(), 300);
    // Then all again: every one a replay.
    for d in &ds {
        assert!(matches!(
            ver.verify(d, NOW),
            Err(Reject::Replayed { sender: 2, .. })
        ));
    }
    let s = ver.stats();
    assert_eq!((s.accepted, s.replayed, s.too_old), (300, 300, 0));
    assert_balanced(s);
    assert_eq!(ver.senders(), [(2, 299)]);
}

#[test]
fn older_than_the_window_is_rejected() {
    let n = REPLAY_WINDOW as usize + 20;
    let ds = series(3, n, 0);
    let top = n - 1;
    let mut ver = verifier();
    ver.verify(&ds[top], NOW).unwrap();
    // The oldest number still inside: top - (WINDOW - 1).
    let edge = top - (REPLAY_WINDOW as usize - 1);
    ver.verify(&ds[edge], NOW).unwrap();
    assert_eq!(
        ver.verify(&ds[edge - 1], NOW).unwrap_err(),
        Reject::TooOld {
            sender: 3,
            seq: (edge - 1) as u64
        }
    );
    assert!(matches!(
        ver.verify(&ds[0], NOW),
        Err(Reject::TooOld { seq: 0, .. })
    ));
    assert!(matches!(
        ver.verify(&ds[edge], NOW),
        Err(Reject::Replayed { .. })
    ));
    let s = ver.stats();
    assert_eq!((s.accepted, s.too_old, s.replayed), (2, 2, 1));
    assert_balanced(s);
}

#[test]
fn lost_datagrams_leave_no_hole_that_blocks() {
    // Every third datagram lost, the rest in order; a late one of the lost
    // arrives at the end.
    let ds = series(4, 100, 0);
    let mut ver = verifier();
    for (i, d) in ds.iter().enumerate() {
        if i % 3 != 0 {
            ver.verify(d, NOW).unwrap();
        }
    }
    ver.verify(&ds[30], NOW).unwrap();
    assert_eq!(ver.stats().accepted, 67);
}

#[test]
fn restarted_master_new_sender_is_accepted() {
    let mut ver = verifier();
    let old = series(0xaaaa, 50, 0);
    for d in &old {
        ver.verify(d, NOW).unwrap();
    }
    // Restart: a new random id, sequence from 0 again.
    let new = series(0xbbbb, 5, 0);
    for d in &new {
        ver.verify(d, NOW).unwrap();
    }
    // The old sender's datagrams are still replays.
    assert!(matches!(
        ver.verify(&old[10], NOW),
        Err(Reject::Replayed { sender: 0xaaaa, .. })
    ));
    let s = ver.stats();
    assert_eq!((s.accepted, s.new_senders, s.evicted_senders), (55, 2, 0));
    assert_eq!(ver.senders(), [(0xbbbb, 4), (0xaaaa, 49)]);
}

#[test]
fn senders_are_bounded_least_recent_evicted() {
    let cfg = VerifierConfig {
        max_senders: 2,
        ..VerifierConfig::default()
    };
    let mut ver = Verifier::new(key(), cfg);
    let a = series(0xa, 3, 0);
    let b = series(0xb, 3, 0);
    let c = series(0xc, 3, 0);
    ver.verify(&a[0], NOW).unwrap();
    ver.verify(&b[0], NOW).unwrap();
    ver.verify(&a[1], NOW).unwrap(); // a is now the more recent
    ver.verify(&c[0], NOW).unwrap(); // evicts b
    assert_eq!(ver.senders(), [(0xc, 0), (0xa, 1)]);
    assert_eq!(ver.stats().evicted_senders, 1);
    // a is still protected.
    assert!(ver.verify(&a[0], NOW).is_err());
    // b was forgotten: its old datagram looks new again. This is what the
    // timestamp bound is for (next test).
    ver.verify(&b[0], NOW).unwrap();
    assert_eq!(ver.stats().new_senders, 4);
    assert_eq!(
        Verifier::new(
            key(),
            VerifierConfig {
                max_senders: 0,
                ..cfg
            }
        )
        .config()
        .max_senders,
        1
    );
}

#[test]
fn timestamps_outside_the_skew_are_stale() {
    let mut ver = verifier();
    let skew = crate::verifier::DEFAULT_MAX_SKEW_MS;
    let old = datagram_with(&[v4(1)], 0, 0, NOW - skew - 1);
    let future = datagram_with(&[v4(1)], 0, 1, NOW + skew + 1);
    let edge_old = datagram_with(&[v4(1)], 0, 2, NOW - skew);
    let edge_new = datagram_with(&[v4(1)], 0, 3, NOW + skew);
    assert_eq!(
        ver.verify(&old, NOW).unwrap_err(),
        Reject::Stale {
            timestamp_ms: NOW - skew - 1,
            now_ms: NOW
        }
    );
    assert!(matches!(
        ver.verify(&future, NOW),
        Err(Reject::Stale { .. })
    ));
    ver.verify(&edge_old, NOW).unwrap();
    ver.verify(&edge_new, NOW).unwrap();
    let s = ver.stats();
    assert_eq!((s.stale, s.accepted), (2, 2));
    assert_balanced(s);
    // A stale datagram did not register its sequence number: with the
    // check off, it goes through.
    let mut lax = Verifier::new(
        key(),
        VerifierConfig {
            max_skew_ms: None,
            ..VerifierConfig::default()
        },
    );
    lax.verify(&old, NOW).unwrap();
    lax.verify(&future, NOW).unwrap();
    lax.verify(&datagram_with(&[v4(1)], 0, 9, 0), NOW).unwrap();
}

#[test]
fn wrong_syncid_filtered_zero_accepts_all() {
    let mut only5 = Verifier::new(
        key(),
        VerifierConfig {
            syncid: 5,
            ..VerifierConfig::default()
        },
    );
    let mut any = verifier();
    for (seq, id) in [0u8, 5, 6, 255].into_iter().enumerate() {
        let d = datagram_with(&[v4(1)], id, seq as u64, NOW);
        any.verify(&d, NOW).unwrap();
        let r = only5.verify(&d, NOW);
        if id == 5 {
            r.unwrap();
        } else {
            assert_eq!(r.unwrap_err(), Reject::WrongSyncid { syncid: id });
        }
    }
    assert_eq!(any.stats().accepted, 4);
    let s = only5.stats();
    assert_eq!((s.accepted, s.wrong_syncid), (1, 3));
    assert_balanced(s);
    // The sync id is read before the MAC: another cluster on the same
    // group, under its own key, counts as another group, not as forgery.
    let mut foreign = datagram_with(&[v4(1)], 6, 0, NOW);
    crate::wire::seal(&mut foreign, &other_key()).unwrap();
    assert!(matches!(
        only5.verify(&foreign, NOW),
        Err(Reject::WrongSyncid { syncid: 6 })
    ));
    assert_eq!(only5.stats().bad_mac, 0);
}

#[test]
fn forgeries_do_not_move_the_window() {
    let ds = series(5, 3, 0);
    let mut ver = verifier();
    ver.verify(&ds[0], NOW).unwrap();
    // A forged datagram claiming a far sequence number.
    let mut forged = datagram_with(&[v4(1)], 0, 1_000_000, NOW);
    forged[8..12].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(
        ver.verify(&forged, NOW).unwrap_err(),
        Reject::Wire(crate::WireError::BadMac)
    );
    // Had it moved the window, these would be too old.
    ver.verify(&ds[1], NOW).unwrap();
    ver.verify(&ds[2], NOW).unwrap();
    assert_eq!(ver.senders(), [(5, 2)]);
}

#[test]
fn rejections_display() {
    let r = Reject::Replayed {
        sender: 0xab,
        seq: 3,
    };
    assert_eq!(r.to_string(), "replay of sequence 3 from sender 000000ab");
    assert!(
        Reject::Wire(crate::WireError::BadMac)
            .to_string()
            .contains("bad MAC")
    );
    assert!(format!("{:?}", verifier()).contains("Verifier"));
}

#[test]
fn window_jumps() {
    let mut w = Window::new(1, 10);
    w.accept(10);
    assert_eq!(w.check(10), crate::verifier::Seen::Replayed);
    // A jump of more than a window forgets everything below.
    w.accept(10 + 5 * REPLAY_WINDOW);
    assert_eq!(w.check(10), crate::verifier::Seen::TooOld);
    let top = 10 + 5 * REPLAY_WINDOW;
    for s in top - REPLAY_WINDOW + 1..top {
        assert_eq!(w.check(s), crate::verifier::Seen::New, "{s}");
    }
    // A jump of less than a window clears the skipped numbers' slots only.
    w.accept(top - 3);
    w.accept(top + 100);
    assert_eq!(w.check(top - 3), crate::verifier::Seen::Replayed);
    assert_eq!(w.check(top), crate::verifier::Seen::Replayed);
    assert_eq!(w.check(top + 50), crate::verifier::Seen::New);
    // Sequence numbers up to u64::MAX.
    let mut w = Window::new(2, u64::MAX - 1);
    w.accept(u64::MAX - 1);
    w.accept(u64::MAX);
    assert_eq!(w.check(u64::MAX), crate::verifier::Seen::Replayed);
    assert_eq!(w.check(u64::MAX - 2), crate::verifier::Seen::New);
}

/// A model of the window: a set of every number ever accepted, and the
/// highest.
fn model_check(seen: &std::collections::BTreeSet<u64>, seq: u64) -> crate::verifier::Seen {
    let top = seen.last().copied().unwrap_or(0);
    if !seen.is_empty() && seq <= top && top - seq >= REPLAY_WINDOW {
        crate::verifier::Seen::TooOld
    } else if seen.contains(&seq) {
        crate::verifier::Seen::Replayed
    } else {
        crate::verifier::Seen::New
    }
}

proptest! {
    /// The bitmap window answers as the model (every number kept) does.
    #[test]
    fn window_matches_model(seqs in prop::collection::vec(0u64..5000, 1..400)) {
        let mut w = Window::new(1, seqs[0]);
        w.accept(seqs[0]);
        let mut seen = std::collections::BTreeSet::from([seqs[0]]);
        for &s in &seqs[1..] {
            let want = model_check(&seen, s);
            prop_assert_eq!(w.check(s), want, "seq {}", s);
            if want == crate::verifier::Seen::New {
                w.accept(s);
                seen.insert(s);
            }
        }
    }
}
