//! Scheduler benchmarks: the cost of one `pick` for each of the fourteen
//! schedulers at 8, 64 and 1024 destinations, and the time to build a
//! 65537-slot Maglev table for 1000 destinations (the Maglev paper reports
//! 1.8 ms).
//!
//! Destinations get weights 1..=10 and random connection counts; each
//! iteration schedules a different client (address and port), so the
//! hashing schedulers touch different slots. lblc/lblcr see one virtual
//! address (the usual single-VIP service), so they measure the cache-hit
//! path plus the lock.
//!
//! Run: `cargo bench -p xvs-benches --bench sched`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use xvs_benches::mix;
use xvs_conntrack::{Addr, ConnKey, DestTable, Proto};
use xvs_sched::{DestInfo, Mh, NAMES, PickCx, PickState, SchedFlags, Scheduler, by_name};

/// `n` configured destinations with weights 1..=10 and some load.
fn service(n: usize) -> (DestTable, Vec<DestInfo>) {
    let table = DestTable::new(n);
    let dests = (0..n)
        .map(|i| {
            let id = i as u32;
            let weight = 1 + (mix(i as u64) % 10) as i32;
            table.configure(id, weight, 0, 0);
            let r = mix(!(i as u64));
            table.set_counts(id, (r % 64) as u32, ((r >> 8) % 256) as u32);
            DestInfo {
                id,
                addr: Addr::v4([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
                port: 80,
                weight,
            }
        })
        .collect();
    (table, dests)
}

/// 4096 flows from different clients to one VIP.
fn flows() -> Vec<ConnKey> {
    (0..4096u64)
        .map(|i| {
            let r = mix(i);
            ConnKey {
                proto: Proto::Tcp,
                caddr: Addr::v4((r as u32).to_be_bytes()),
                cport: (r >> 32) as u16 | 1024,
                vaddr: Addr::v4([198, 51, 100, 1]),
                vport: 443,
            }
        })
        .collect()
}

fn pick(c: &mut Criterion) {
    let keys = flows();
    let mut g = c.benchmark_group("pick");
    g.measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20);
    for &name in NAMES {
        for n in [8usize, 64, 1024] {
            let (table, dests) = service(n);
            let mut sched: Box<dyn Scheduler> =
                by_name(name, SchedFlags::NONE).expect("known name");
            sched.update(&dests);
            let mut state = PickState::with_seed(1);
            let mut i = 0usize;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) % keys.len();
                    let mut cx = PickCx {
                        dests: &table,
                        now_ms: 1,
                        state: &mut state,
                    };
                    black_box(sched.pick(&mut cx, black_box(&keys[i])))
                })
            });
        }
    }
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let (_, dests) = service(1000);
    let mut g = c.benchmark_group("mh-build");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(10);
    let mut mh = Mh::new(SchedFlags::NONE);
    g.bench_with_input(BenchmarkId::new("65537-slots", 1000), &dests, |b, dests| {
        b.iter(|| mh.update(black_box(dests)))
    });
    g.finish();
}

criterion_group!(benches, pick, maglev_build);
criterion_main!(benches);
