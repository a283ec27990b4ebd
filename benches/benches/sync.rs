//! The connection-sync master's and backup's cost per entry: packing
//! entries into sealed datagrams (`Encoder`, one HMAC-SHA256 per datagram)
//! and verifying and decoding them (`Verifier` and the entry iterator),
//! IPv4 entries, the default 1452-byte datagrams (44 entries each).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xvs_conntrack::{Addr, Fwd, Proto, TcpState};
use xvs_sync::{Encoder, Key, SyncConn, Verifier, VerifierConfig, wire};

const ENTRIES: usize = 44 * 100;

fn entries() -> Vec<SyncConn> {
    (0..ENTRIES)
        .map(|i| SyncConn {
            proto: Proto::Tcp,
            caddr: Addr::v4([198, 51, (i >> 8) as u8, i as u8]),
            cport: 10_000 + i as u16,
            vaddr: Addr::v4([192, 0, 2, 50]),
            vport: 80,
            daddr: Addr::v4([192, 0, 2, 20 + (i % 3) as u8]),
            dport: 80,
            fwd: Fwd::Route,
            state: TcpState::Established,
            flags: 0,
            timeout_ms: 900_000,
            fwmark: 0,
        })
        .collect()
}

fn key() -> Key {
    Key::from_bytes(b"a benchmark secret of 32 bytes..").unwrap()
}

fn sync(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync");
    g.throughput(Throughput::Elements(ENTRIES as u64));
    let es = entries();
    let mut enc = Encoder::new(key(), 7, wire::DEFAULT_MAXLEN, 1);
    g.bench_function("encode_seal", |b| {
        b.iter(|| {
            for e in &es {
                if let Some(d) = enc.push(e, 1_700_000_000_000) {
                    black_box(d.len());
                }
            }
            black_box(enc.finish(1_700_000_000_000).map(<[u8]>::len));
        })
    });
    // The datagrams of one pass, verified by a fresh verifier each time
    // (a verifier accepts each sequence number once).
    let mut enc = Encoder::new(key(), 7, wire::DEFAULT_MAXLEN, 2);
    let mut datagrams = Vec::new();
    for e in &es {
        if let Some(d) = enc.push(e, 1_700_000_000_000) {
            datagrams.push(d.to_vec());
        }
    }
    datagrams.extend(enc.finish(1_700_000_000_000).map(<[u8]>::to_vec));
    g.bench_function("verify_decode", |b| {
        b.iter(|| {
            let mut v = Verifier::new(
                key(),
                VerifierConfig {
                    max_skew_ms: None,
                    ..VerifierConfig::default()
                },
            );
            for d in &datagrams {
                let d = v.verify(d, 1_700_000_000_000).expect("valid");
                for e in d.entries() {
                    black_box(e);
                }
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = sync
}
criterion_main!(benches);
