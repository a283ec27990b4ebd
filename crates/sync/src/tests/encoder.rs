//! Batching: datagram counts, sizes, sequence numbers.

use super::*;
use crate::wire::{
    DEFAULT_MAXLEN, ENTRY_V4_LEN, ENTRY_V6_LEN, MAX_DATAGRAM_LEN, MIN_MAXLEN, OVERHEAD, open,
};

/// Pushes `conns` and finishes; returns the datagrams.
fn encode(enc: &mut Encoder, conns: &[SyncConn]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in conns {
        if let Some(d) = enc.push(c, NOW) {
            out.push(d.to_vec());
        }
    }
    out.extend(enc.finish(NOW).map(<[u8]>::to_vec));
    out
}

#[test]
fn n_entries_make_ceil_n_over_capacity_datagrams() {
    for maxlen in [
        MIN_MAXLEN,
        200,
        576,
        1000,
        DEFAULT_MAXLEN,
        1472,
        8972,
        MAX_DATAGRAM_LEN,
    ] {
        for v6_entries in [false, true] {
            let per = Encoder::per_datagram(maxlen, v6_entries);
            let elen = if v6_entries {
                ENTRY_V6_LEN
            } else {
                ENTRY_V4_LEN
            };
            assert_eq!(per, (maxlen - OVERHEAD) / elen);
            for n in [0, 1, per - 1, per, per + 1, 3 * per, 3 * per + 2, 1000] {
                let conns: Vec<_> = (0..n as u16)
                    .map(|i| if v6_entries { v6(i) } else { v4(i) })
                    .collect();
                let mut enc = Encoder::new(key(), 1, maxlen, 99);
                let dgrams = encode(&mut enc, &conns);
                assert_eq!(dgrams.len(), n.div_ceil(per), "maxlen {maxlen} n {n}");
                let mut got = Vec::new();
                for (i, d) in dgrams.iter().enumerate() {
                    assert!(d.len() <= maxlen, "{} > {maxlen}", d.len());
                    let o = open(d, &key()).unwrap();
                    assert_eq!(o.header().seq, i as u64);
                    // All but the last are full.
                    if i + 1 < dgrams.len() {
                        assert_eq!(o.entries().len(), per);
                    }
                    got.extend(o.entries());
                }
                assert_eq!(got, conns);
                let s = enc.stats();
                assert_eq!(s.datagrams, dgrams.len() as u64);
                assert_eq!(s.entries, n as u64);
                assert_eq!(s.bytes, dgrams.iter().map(|d| d.len() as u64).sum::<u64>());
                assert_eq!(enc.next_seq(), dgrams.len() as u64);
            }
        }
    }
}

#[test]
fn default_maxlen_capacity() {
    // 1452 bytes: 44 IPv4 or 20 IPv6 entries (IPVS v1: 40 IPv4 entries of
    // 36 bytes in its 1472 - 8).
    assert_eq!(Encoder::per_datagram(DEFAULT_MAXLEN, false), 44);
    assert_eq!(Encoder::per_datagram(DEFAULT_MAXLEN, true), 20);
    // The table in docs/sync-protocol.md.
    assert_eq!(Encoder::per_datagram(1472, false), 44);
    assert_eq!(Encoder::per_datagram(1472, true), 21);
    assert_eq!(Encoder::per_datagram(8972, false), 279);
    assert_eq!(Encoder::per_datagram(8972, true), 131);
}

#[test]
fn mixed_families_fill_without_exceeding() {
    for maxlen in [MIN_MAXLEN, 150, 333, DEFAULT_MAXLEN] {
        let conns: Vec<_> = (0..500u16)
            .map(|i| if i % 3 == 0 { v6(i) } else { v4(i) })
            .collect();
        let mut enc = Encoder::new(key(), 0, maxlen, 7);
        let dgrams = encode(&mut enc, &conns);
        let mut next = 0;
        for (i, d) in dgrams.iter().enumerate() {
            assert!(d.len() <= maxlen);
            let n = open(d, &key()).unwrap().entries().count();
            next += n;
            // A datagram was sealed only because the next entry did not fit.
            if i + 1 < dgrams.len() {
                let following = crate::wire::entry_len(&conns[next]);
                assert!(d.len() + following > maxlen, "sealed too early");
            }
        }
        assert_eq!(next, conns.len());
    }
}

#[test]
fn maxlen_is_clamped() {
    let enc = Encoder::new(key(), 0, 1, 0);
    assert_eq!(enc.maxlen(), MIN_MAXLEN);
    let enc = Encoder::new(key(), 0, 1 << 20, 0);
    assert_eq!(enc.maxlen(), MAX_DATAGRAM_LEN);
    assert_eq!(Encoder::per_datagram(1, true), 1);
    // The smallest limit still carries an IPv6 entry per datagram.
    let mut enc = Encoder::new(key(), 0, 1, 0);
    let d = encode(&mut enc, &[v6(1), v6(2), v4(3)]);
    assert_eq!(
        d.len(),
        3,
        "one IPv6 entry, then one more, then the IPv4 one"
    );
}

#[test]
fn finish_and_pending() {
    let mut enc = Encoder::new(key(), 4, DEFAULT_MAXLEN, 0xabcd);
    assert_eq!(enc.finish(NOW), None, "nothing to send");
    assert_eq!(enc.next_seq(), 0, "an empty finish uses no number");
    assert!(enc.push(&v4(1), NOW).is_none());
    assert!(enc.push(&v6(1), NOW).is_none());
    assert_eq!(enc.pending(), 2);
    let d = enc.finish(NOW + 1).unwrap().to_vec();
    assert_eq!(enc.pending(), 0);
    assert_eq!(enc.finish(NOW + 2), None);
    let o = open(&d, &key()).unwrap();
    assert_eq!(o.header().timestamp_ms, NOW + 1);
    assert_eq!(o.header().syncid, 4);
    assert_eq!(o.header().sender, 0xabcd);
    assert_eq!(enc.sender_id(), 0xabcd);
    assert_eq!(enc.syncid(), 4);
    // The sealed datagram is handed back with the push that overflowed.
    let per = Encoder::per_datagram(DEFAULT_MAXLEN, false);
    for i in 0..per as u16 {
        assert!(enc.push(&v4(i), NOW).is_none());
    }
    let full = enc.push(&v4(999), NOW).unwrap().to_vec();
    assert_eq!(open(&full, &key()).unwrap().entries().len(), per);
    assert_eq!(enc.pending(), 1);
}

#[test]
fn random_ids_differ() {
    let a = Encoder::with_random_id(key(), 0, DEFAULT_MAXLEN).unwrap();
    let b = Encoder::with_random_id(key(), 0, DEFAULT_MAXLEN).unwrap();
    let c = Encoder::with_random_id(key(), 0, DEFAULT_MAXLEN).unwrap();
    // Three equal 32-bit random ids: about 2^-64.
    assert!(a.sender_id() != b.sender_id() || b.sender_id() != c.sender_id());
    assert!(format!("{a:?}").contains("Encoder"));
}
