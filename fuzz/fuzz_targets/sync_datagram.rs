//! Connection sync datagrams (`xvs_sync::wire`, `Verifier`) with a fixed
//! key, two ways:
//!
//! 1. The input as received: `wire::open` and `Verifier::verify` never
//!    panic, agree with each other, and count the datagram once in their
//!    statistics. Without the key the fuzzer cannot forge a MAC, so this
//!    mostly reaches the checks before it.
//! 2. The input sealed with the key (its last 16 bytes replaced by the
//!    right MAC), as a sender holding the key but writing a bad body
//!    would: with the seeds (real datagrams from `Encoder`) mutated, this
//!    reaches the entry checks. A sealed datagram is never refused for its
//!    MAC; it is refused for its format, or it opens, and then its entries
//!    are as many as the header counts, fill the datagram exactly, and
//!    each encodes back to an entry that decodes to itself; a verifier
//!    accepts it once and refuses it as a replay the second time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xvs_sync::wire::{self, ENTRY_V4_LEN, ENTRY_V6_LEN, MAC_LEN, OVERHEAD, WireError};
use xvs_sync::{Key, Reject, Verifier, VerifierConfig};

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(xvs_fuzz::SYNC_KEY).expect("the fuzz key is long enough");
    let cfg = VerifierConfig {
        max_skew_ms: None,
        ..VerifierConfig::default()
    };

    // As received.
    let opened = wire::open(data, &key);
    let mut ver = Verifier::new(key.clone(), cfg);
    let verified = ver.verify(data, 0);
    match (&opened, &verified) {
        (Ok(_), Ok(_)) => {}
        (Err(e), Err(Reject::Wire(v))) => assert_eq!(e, v),
        (o, v) => panic!("open {o:?} but verify {v:?}"),
    }
    let s = ver.stats();
    assert_eq!(s.received, 1);
    assert_eq!(
        s.accepted + s.malformed + s.bad_mac + s.wrong_syncid + s.stale + s.replayed + s.too_old,
        1
    );

    // Sealed with the key.
    if data.len() < OVERHEAD {
        return;
    }
    let mut sealed = data.to_vec();
    wire::seal(&mut sealed, &key).expect("long enough to seal");
    if opened.is_ok() {
        assert_eq!(sealed, data, "a datagram that opened had another MAC");
    }
    match wire::open(&sealed, &key) {
        Err(WireError::BadMac) => panic!("a sealed datagram failed its MAC"),
        Err(_) => {}
        Ok(d) => {
            let entries: Vec<_> = d.entries().collect();
            assert_eq!(entries.len(), usize::from(d.header().count));
            let body: usize = entries.iter().map(wire::entry_len).sum();
            // An IPv6 entry of IPv4-mapped addresses re-encodes in the
            // short form, so compare lengths through what was on the wire.
            let on_wire = sealed.len() - OVERHEAD;
            assert!(body <= on_wire);
            let mut off = 0;
            for c in &entries {
                let (e, n) = wire::decode_entry(&sealed[wire::HEADER_LEN + off..], 0)
                    .expect("an opened datagram's entries decode");
                assert_eq!(&e, c);
                assert!(n == ENTRY_V4_LEN || n == ENTRY_V6_LEN);
                off += n;
                let mut buf = [0u8; ENTRY_V6_LEN];
                let len = wire::encode_entry(c, &mut buf).expect("room for any entry");
                let (back, blen) = wire::decode_entry(&buf, 0).expect("an encoded entry decodes");
                assert_eq!((&back, blen), (c, len), "entry does not round-trip");
            }
            assert_eq!(off, on_wire, "entries do not fill the datagram");
            assert_eq!(sealed.len() - MAC_LEN - wire::HEADER_LEN, off);
            let mut ver = Verifier::new(key, cfg);
            assert!(
                ver.verify(&sealed, 0).is_ok(),
                "a sealed datagram was refused"
            );
            assert!(matches!(
                ver.verify(&sealed, 0),
                Err(Reject::Replayed { .. })
            ));
        }
    }
});
