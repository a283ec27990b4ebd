//! The datagram format: round trips, reference bytes, every truncation,
//! every bit flip, every malformed entry, and property tests.

use proptest::prelude::*;
use xvs_conntrack::conn::flags;
use xvs_conntrack::{Addr, Fwd, Proto, TcpState};

use super::*;
use crate::wire::*;
use crate::{SYNC_FLAGS, Verifier, VerifierConfig};

fn decode_all(d: &[u8]) -> Vec<SyncConn> {
    open(d, &key()).unwrap().entries().collect()
}

#[test]
fn v4_round_trip_every_field() {
    let c = SyncConn {
        proto: Proto::Tcp,
        caddr: Addr::v4([198, 51, 100, 7]),
        cport: 0x1234,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 80,
        daddr: Addr::v4([10, 0, 0, 2]),
        dport: 8080,
        fwd: Fwd::Masq,
        state: TcpState::Established,
        flags: flags::PERSISTENT | flags::NOOUTPUT,
        timeout_ms: 900_000,
        fwmark: 0x0102_0304,
    };
    let d = datagram_with(&[c], 9, 5, NOW);
    assert_eq!(d.len(), OVERHEAD + ENTRY_V4_LEN);
    // Reference bytes: header, then the entry.
    #[rustfmt::skip]
    let header = [
        b'X', b'V', b'S', b'Y', 1, 9, 0, 1,
        0xfe, 0xed, 0xbe, 0xef,
        0, 0, 0, 0, 0, 0, 0, 5,
        0, 0, 1, 139, 207, 229, 104, 0,
    ];
    #[rustfmt::skip]
    let entry = [
        4, 32, 6, 0, 1, 0x06,
        0x12, 0x34, 0x00, 0x50, 0x1f, 0x90,
        1, 2, 3, 4,
        0x00, 0x0d, 0xbb, 0xa0,
        198, 51, 100, 7,
        192, 0, 2, 1,
        10, 0, 0, 2,
    ];
    assert_eq!(d[..HEADER_LEN], header);
    assert_eq!(d[HEADER_LEN..HEADER_LEN + ENTRY_V4_LEN], entry);
    let opened = open(&d, &key()).unwrap();
    assert_eq!(
        *opened.header(),
        Header {
            syncid: 9,
            count: 1,
            sender: 0xfeed_beef,
            seq: 5,
            timestamp_ms: NOW,
        }
    );
    assert_eq!(Header::peek(&d).unwrap(), *opened.header());
    assert_eq!(opened.entries().len(), 1);
    assert_eq!(opened.entries().collect::<Vec<_>>(), [c]);
}

#[test]
fn v6_and_mixed_round_trip() {
    let a = v6(1);
    // A tunnel from an IPv4 service to an IPv6 real server: IPv6 form,
    // the mapped IPv4 addresses kept exactly.
    let mixed = SyncConn {
        daddr: v6(2).daddr,
        fwd: Fwd::Tunnel,
        state: TcpState::TimeWait,
        timeout_ms: u32::MAX,
        fwmark: u32::MAX,
        cport: u16::MAX,
        ..v4(3)
    };
    let sctp = SyncConn {
        proto: Proto::Sctp,
        ..v6(4)
    };
    assert!(!mixed.is_v4());
    let d = datagram_with(&[a, v4(1), mixed, sctp], 0, 0, NOW);
    assert_eq!(d.len(), OVERHEAD + 3 * ENTRY_V6_LEN + ENTRY_V4_LEN);
    assert_eq!(d[HEADER_LEN], TYPE_V6);
    assert_eq!(d[HEADER_LEN + 1] as usize, ENTRY_V6_LEN);
    let got = decode_all(&d);
    assert_eq!(got, [a, v4(1), mixed, sctp]);
    assert!(got[2].caddr.is_v4() && !got[2].daddr.is_v4());
}

#[test]
fn templates_round_trip() {
    let fwm = fwmark_template();
    let tcp_tpl = SyncConn {
        cport: 0,
        caddr: Addr::v4([198, 51, 100, 0]),
        flags: flags::TEMPLATE | flags::PERSISTENT,
        state: TcpState::None,
        ..v4(9)
    };
    let v6_tpl = SyncConn {
        cport: 0,
        flags: flags::TEMPLATE,
        ..v6(9)
    };
    let got = decode_all(&datagram_with(&[fwm, tcp_tpl, v6_tpl], 0, 0, NOW));
    assert_eq!(got, [fwm, tcp_tpl, v6_tpl]);
    assert!(got.iter().all(SyncConn::is_template));
    assert_eq!(got[0].proto, Proto::Any);
    assert_eq!(got[0].fwmark, 7);
}

#[test]
fn every_state_method_and_flag_combination() {
    let mut all = Vec::new();
    for state in TcpState::ALL {
        for fwd in [Fwd::Masq, Fwd::Tunnel, Fwd::Route] {
            for f in 0..8u16 {
                let fl = [flags::TEMPLATE, flags::PERSISTENT, flags::NOOUTPUT]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| f & (1 << i) != 0)
                    .fold(0, |a, (_, b)| a | b);
                all.push(SyncConn {
                    state,
                    fwd,
                    flags: fl,
                    ..v4(f)
                });
            }
        }
    }
    let mut enc = Encoder::new(key(), 0, MAX_DATAGRAM_LEN, 1);
    for c in &all {
        assert!(enc.push(c, NOW).is_none());
    }
    let d = enc.finish(NOW).unwrap().to_vec();
    assert_eq!(decode_all(&d), all);
}

#[test]
fn local_flags_are_not_sent() {
    let c = SyncConn {
        flags: flags::TEMPLATE
            | flags::LIVE
            | flags::HASHED_IN
            | flags::HASHED_OUT
            | flags::INACTIVE
            | flags::CONTROLLED
            | flags::SYNCED,
        ..v4(1)
    };
    let got = decode_all(&datagram_with(&[c], 0, 0, NOW));
    assert_eq!(got[0].flags, flags::TEMPLATE);
    assert_eq!(got[0].flags & !SYNC_FLAGS, 0);
}

#[test]
fn every_truncation_is_rejected() {
    let d = datagram_with(&[v4(1), v6(2), fwmark_template()], 3, 77, NOW);
    for len in 0..d.len() {
        let want = if len < OVERHEAD {
            WireError::Truncated { len }
        } else {
            WireError::BadMac
        };
        assert_eq!(open(&d[..len], &key()).unwrap_err(), want, "length {len}");
    }
    // And a byte too many (garbage appended) moves the MAC: rejected too.
    let mut longer = d.clone();
    longer.push(0);
    assert_eq!(open(&longer, &key()).unwrap_err(), WireError::BadMac);
    assert!(open(&d, &key()).is_ok());
}

#[test]
fn every_bit_flip_is_rejected_and_counted() {
    let d = datagram_with(&[v4(1), v6(2)], 3, 77, NOW);
    let mut ver = Verifier::new(key(), VerifierConfig::default());
    let mut flips = 0u64;
    for byte in 0..d.len() {
        for bit in 0..8 {
            let mut f = d.clone();
            f[byte] ^= 1 << bit;
            let err = ver.verify(&f, NOW).unwrap_err();
            let want = match byte {
                0..4 => WireError::BadMagic,
                4 => WireError::UnknownVersion(1 ^ (1 << bit)),
                // Sync id (accepted any), count, sender, sequence,
                // timestamp, entries, the MAC itself.
                _ => WireError::BadMac,
            };
            assert_eq!(err, crate::Reject::Wire(want), "byte {byte} bit {bit}");
            flips += 1;
        }
    }
    let s = ver.stats();
    assert_eq!(s.received, flips);
    assert_eq!(s.malformed, 5 * 8, "magic and version");
    assert_eq!(s.bad_mac, flips - 5 * 8);
    assert_eq!(s.accepted, 0);
    // The original still goes through: no forgery moved the window.
    assert!(ver.verify(&d, NOW).is_ok());
}

#[test]
fn another_key_is_rejected() {
    let d = datagram_with(&[v4(1)], 0, 0, NOW);
    assert_eq!(open(&d, &other_key()).unwrap_err(), WireError::BadMac);
    let mut ver = Verifier::new(other_key(), VerifierConfig::default());
    assert!(ver.verify(&d, NOW).is_err());
    assert_eq!(ver.stats().bad_mac, 1);
}

#[test]
fn not_ours_is_bad_magic() {
    // An IPVS v1 sync header (reserved 0, syncid, size, count, version 1).
    let mut ipvs = vec![0u8, 1, 0, 44, 1, 1, 0, 0];
    ipvs.resize(44, 0);
    assert_eq!(open(&ipvs, &key()).unwrap_err(), WireError::BadMagic);
    let mut d = datagram_with(&[v4(1)], 0, 0, NOW);
    d[4] = 2;
    assert_eq!(open(&d, &key()).unwrap_err(), WireError::UnknownVersion(2));
}

/// An entry's bytes, for building malformed bodies.
fn entry_bytes(c: &SyncConn) -> Vec<u8> {
    let mut b = vec![0; entry_len(c)];
    assert_eq!(encode_entry(c, &mut b), Some(b.len()));
    b
}

#[test]
fn malformed_entries_under_a_valid_mac() {
    let e4 = entry_bytes(&v4(1));
    let e6 = entry_bytes(&v6(1));
    let at = HEADER_LEN;
    let cases: Vec<(&str, u16, Vec<u8>, WireError)> = vec![
        (
            "count too high",
            2,
            e4.clone(),
            WireError::CountMismatch {
                declared: 2,
                found: 1,
            },
        ),
        (
            "count too low",
            1,
            [&e4[..], &e6[..]].concat(),
            WireError::CountMismatch {
                declared: 1,
                found: 2,
            },
        ),
        (
            "entries without count",
            0,
            e4.clone(),
            WireError::CountMismatch {
                declared: 0,
                found: 1,
            },
        ),
        (
            "unknown type",
            1,
            {
                let mut e = e4.clone();
                e[0] = 5;
                e
            },
            WireError::UnknownEntryType { offset: at, ty: 5 },
        ),
        (
            "v4 entry with v6 length",
            1,
            {
                let mut e = e4.clone();
                e[1] = ENTRY_V6_LEN as u8;
                e
            },
            WireError::BadEntryLength {
                offset: at,
                ty: TYPE_V4,
                len: ENTRY_V6_LEN as u8,
            },
        ),
        (
            "v6 entry with v4 length",
            1,
            {
                let mut e = e6.clone();
                e[1] = ENTRY_V4_LEN as u8;
                e
            },
            WireError::BadEntryLength {
                offset: at,
                ty: TYPE_V6,
                len: ENTRY_V4_LEN as u8,
            },
        ),
        (
            "entry cut short",
            1,
            e6[..40].to_vec(),
            WireError::TruncatedEntry { offset: at },
        ),
        (
            "one stray byte after an entry",
            1,
            [&e4[..], &[4]].concat(),
            WireError::TruncatedEntry {
                offset: at + ENTRY_V4_LEN,
            },
        ),
        (
            "unknown protocol",
            1,
            {
                let mut e = e4.clone();
                e[2] = 1;
                e
            },
            WireError::UnknownProto {
                offset: at,
                proto: 1,
            },
        ),
        (
            "unknown method",
            1,
            {
                let mut e = e4.clone();
                e[3] = 1;
                e
            },
            WireError::UnknownFwd { offset: at, fwd: 1 },
        ),
        (
            "unknown state",
            1,
            {
                let mut e = e4.clone();
                e[4] = 11;
                e
            },
            WireError::UnknownState {
                offset: at,
                state: 11,
            },
        ),
        (
            "unknown flags",
            1,
            {
                let mut e = e4.clone();
                e[5] = 0x08;
                e
            },
            WireError::UnknownFlags {
                offset: at,
                flags: 0x08,
            },
        ),
        (
            "second entry bad, offset counts the first",
            2,
            {
                let mut e = [&e4[..], &e6[..]].concat();
                e[ENTRY_V4_LEN + 3] = 9;
                e
            },
            WireError::UnknownFwd {
                offset: at + ENTRY_V4_LEN,
                fwd: 9,
            },
        ),
    ];
    let mut ver = Verifier::new(key(), VerifierConfig::default());
    for (what, count, body, want) in &cases {
        let d = raw_sealed(*count, body);
        assert_eq!(open(&d, &key()).unwrap_err(), *want, "{what}");
        assert_eq!(ver.verify(&d, NOW).unwrap_err(), crate::Reject::Wire(*want));
    }
    assert_eq!(ver.stats().malformed, cases.len() as u64);
    // The same builder with a right body is accepted: the cases above fail
    // for their one defect only.
    let ok = raw_sealed(2, &[&e4[..], &e6[..]].concat());
    assert_eq!(open(&ok, &key()).unwrap().entries().count(), 2);
    // An empty datagram (count 0, no entries) is well-formed.
    assert_eq!(
        open(&raw_sealed(0, &[]), &key()).unwrap().entries().len(),
        0
    );
}

#[test]
fn encode_entry_needs_room() {
    let mut small = [0u8; ENTRY_V4_LEN - 1];
    assert_eq!(encode_entry(&v4(1), &mut small), None);
    assert_eq!(small, [0; ENTRY_V4_LEN - 1], "nothing written");
    let mut b = [0u8; ENTRY_V6_LEN];
    assert_eq!(encode_entry(&v4(1), &mut b), Some(ENTRY_V4_LEN));
    assert_eq!(encode_entry(&v6(1), &mut b), Some(ENTRY_V6_LEN));
    assert_eq!(
        seal(&mut [0u8; OVERHEAD - 1], &key()),
        Err(WireError::Truncated { len: OVERHEAD - 1 })
    );
}

#[test]
fn maxlen_from_mtu() {
    assert_eq!(maxlen_for_mtu(1500, false), 1472);
    assert_eq!(maxlen_for_mtu(1500, true), DEFAULT_MAXLEN);
    assert_eq!(maxlen_for_mtu(9000, false), 8972);
    assert_eq!(maxlen_for_mtu(68, false), MIN_MAXLEN);
    assert_eq!(maxlen_for_mtu(0, true), MIN_MAXLEN);
    assert_eq!(maxlen_for_mtu(1 << 20, false), MAX_DATAGRAM_LEN);
}

fn arb_addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(Addr::v4),
        any::<[u8; 16]>().prop_map(Addr::v6),
    ]
}

pub(super) fn arb_conn() -> impl Strategy<Value = SyncConn> {
    (
        (
            prop::sample::select(vec![Proto::Any, Proto::Tcp, Proto::Udp, Proto::Sctp]),
            arb_addr(),
            any::<u16>(),
            arb_addr(),
            any::<u16>(),
            arb_addr(),
            any::<u16>(),
        ),
        (
            prop::sample::select(vec![Fwd::Masq, Fwd::Tunnel, Fwd::Route]),
            prop::sample::select(TcpState::ALL.to_vec()),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (proto, caddr, cport, vaddr, vport, daddr, dport),
                (fwd, state, fl, timeout_ms, fwmark),
            )| SyncConn {
                proto,
                caddr,
                cport,
                vaddr,
                vport,
                daddr,
                dport,
                fwd,
                state,
                flags: fl & SYNC_FLAGS,
                timeout_ms,
                fwmark,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random entries through the encoder and back, at random limits.
    #[test]
    fn random_entries_round_trip(
        conns in prop::collection::vec(arb_conn(), 0..150),
        maxlen in MIN_MAXLEN..3000usize,
        sender in any::<u32>(),
        syncid in any::<u8>(),
    ) {
        let mut enc = Encoder::new(key(), syncid, maxlen, sender);
        let mut dgrams = Vec::new();
        for c in &conns {
            if let Some(d) = enc.push(c, NOW) {
                dgrams.push(d.to_vec());
            }
        }
        dgrams.extend(enc.finish(NOW).map(<[u8]>::to_vec));
        let mut got = Vec::new();
        for (i, d) in dgrams.iter().enumerate() {
            prop_assert!(d.len() <= maxlen);
            let o = open(d, &key()).unwrap();
            prop_assert_eq!(o.header().seq, i as u64);
            prop_assert_eq!(o.header().sender, sender);
            prop_assert_eq!(o.header().syncid, syncid);
            got.extend(o.entries());
        }
        prop_assert_eq!(got, conns);
    }

    /// Arbitrary bytes never panic the decoder or the verifier.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Header::peek(&bytes);
        prop_assert!(open(&bytes, &key()).is_err());
        let mut ver = Verifier::new(key(), VerifierConfig::default());
        prop_assert!(ver.verify(&bytes, NOW).is_err());
        prop_assert_eq!(ver.stats().received, 1);
    }

    /// Arbitrary bodies behind a valid header and MAC (what only a key
    /// holder could send) never panic either: every entry check is reached.
    #[test]
    fn arbitrary_sealed_bodies_never_panic(
        count in any::<u16>(),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let d = raw_sealed(count, &body);
        if let Ok(o) = open(&d, &key()) {
            prop_assert_eq!(o.entries().count(), usize::from(count));
        }
    }

    /// Valid datagrams with random bytes of the entries changed, resealed:
    /// either a clean error or entries that re-encode to the same bytes.
    #[test]
    fn mutated_sealed_entries_never_panic(
        conns in prop::collection::vec(arb_conn(), 1..10),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let d = datagram_with(&conns, 0, 0, NOW);
        let body_len = d.len() - OVERHEAD;
        let mut body = d[HEADER_LEN..HEADER_LEN + body_len].to_vec();
        for (i, v) in edits {
            let i = i.index(body_len);
            body[i] = v;
        }
        let m = raw_sealed(conns.len() as u16, &body);
        if let Ok(o) = open(&m, &key()) {
            let mut again = Vec::new();
            for c in o.entries() {
                let mut b = [0u8; ENTRY_V6_LEN];
                let n = encode_entry(&c, &mut b).unwrap();
                again.extend_from_slice(&b[..n]);
            }
            // Canonical re-encoding may pick the short form for a v6 entry
            // whose addresses are all IPv4-mapped; otherwise bytes match.
            if again.len() == body.len() {
                prop_assert_eq!(again, body);
            }
        }
    }
}
