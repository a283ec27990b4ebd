//! Connection table: lookup hit and miss at 1k, 1M and 8M entries, insert
//! + expire churn, and memory per entry at 8M entries.
//!
//! `cargo bench -p xvs-benches --bench conntrack`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use xvs_benches::{mix, rss_bytes};
use xvs_conntrack::*;

const M: usize = 1 << 20;

fn key(i: u64) -> ConnKey {
    let r = mix(i);
    ConnKey {
        proto: Proto::Tcp,
        caddr: Addr::v4((r as u32).to_be_bytes()),
        cport: (r >> 32) as u16 | 1024,
        vaddr: Addr::v4([192, 0, 2, 1]),
        vport: 80,
    }
}

fn new_conn(i: u64, fwd: Fwd) -> NewConn {
    NewConn {
        key: key(i),
        daddr: Addr::v4([10, 0, 0, (i % 200) as u8 + 1]),
        dport: 80,
        dest: (i % 16) as u32,
        fwd,
        template: None,
    }
}

fn filled(n: usize, fwd: Fwd) -> ConnTable {
    let dests = Arc::new(DestTable::new(16));
    for d in 0..16 {
        dests.configure(d, 1, 0, 0);
    }
    let t = ConnTable::new(
        TableConfig {
            capacity: n,
            shards: 256,
            prealloc: false,
        },
        dests,
    );
    for i in 0..n as u64 {
        t.insert(0, &new_conn(i, fwd), tcp_flags::SYN, 60)
            .expect("capacity");
    }
    t
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/lookup");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for (label, n) in [("1k", 1000usize), ("1M", M), ("8M", 8 * M)] {
        let t = filled(n, Fwd::Route);
        // Visit entries in a scattered order so large tables miss the cache
        // as real traffic would.
        let hits: Vec<ConnKey> = (0..65536u64).map(|i| key(mix(i) % n as u64)).collect();
        let misses: Vec<ConnKey> = (0..65536u64).map(|i| key(n as u64 + i)).collect();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("hit", label), |b| {
            b.iter(|| {
                i = (i + 1) & 65535;
                black_box(t.lookup_in(1, &hits[i], tcp_flags::ACK, 60))
            })
        });
        g.bench_function(BenchmarkId::new("miss", label), |b| {
            b.iter(|| {
                i = (i + 1) & 65535;
                black_box(t.lookup_in(1, &misses[i], tcp_flags::ACK, 60))
            })
        });
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack/churn");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    // Steady state of 1M live UDP entries with a 1 s timeout: each iteration
    // inserts one new entry at a clock that advances 1 ms per insert and
    // runs the expiry pass every 1000 inserts, so inserts and removals
    // balance (the cost is insert + its share of expiry).
    let dests = Arc::new(DestTable::new(16));
    dests.configure(0, 1, 0, 0);
    let t = ConnTable::new(
        TableConfig {
            capacity: 2 * M,
            shards: 256,
            prealloc: false,
        },
        dests,
    );
    t.timeouts.set(0, 0, 1);
    let mut i = 0u64;
    g.bench_function("insert+expire", |b| {
        b.iter(|| {
            i += 1;
            let mut n = new_conn(i, Fwd::Masq);
            n.key.proto = Proto::Udp;
            n.dest = 0;
            let r = t.insert(i, &n, 0, 60);
            if i.is_multiple_of(1000) {
                t.expire(i, usize::MAX);
            }
            black_box(r)
        })
    });
    g.finish();
}

/// Not a timing: prints bytes per connection at 8M entries for NAT entries
/// (indexed in both directions, the larger case): the process's RSS delta
/// over the entries, and the table's own accounting. It runs first, in a
/// fresh process, so the RSS delta is not hidden by memory freed earlier.
fn memory(_: &mut Criterion) {
    let n = 8 * M;
    let before = rss_bytes();
    let t = filled(n, Fwd::Masq);
    let after = rss_bytes();
    println!(
        "conntrack/memory/8M: {} entries, RSS delta {:.1} B/entry, table accounting {:.1} B/entry",
        t.len(),
        after.saturating_sub(before) as f64 / n as f64,
        t.memory_bytes() as f64 / n as f64,
    );
}

criterion_group!(benches, memory, lookups, churn);
criterion_main!(benches);
