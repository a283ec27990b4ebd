//! The forwarding pipeline without I/O: `Pipeline::process` on batches of
//! 64 minimum-size frames (64-byte IPv4 TCP), single core, through the real
//! service snapshot, connection table and schedulers.
//!
//! - `established/{dr,nat_in,nat_out,tun}`: 64 flows already in the table.
//! - `new_conn/dr_rr`: every frame is the SYN of a new flow (schedule with
//!   rr, insert, rewrite).
//! - `scaling_dr/{1,2,..}_cores`: established DR on that many threads at
//!   once, one pipeline each, one shared table (see [`scaling`]).
//!
//! Frames sit in 2 KiB buffers with 256 bytes of headroom, like AF_XDP UMEM
//! frames. Each batch is restored from templates before it is timed
//! (forwarding rewrites in place, and the TTL goes down), so only the 64
//! `process` calls are measured (`iter_custom`; two clock reads per batch).
//! Reported time is per batch of 64: divide by 64 for ns per packet
//! (criterion's throughput line gives packets per second).
//!
//! `cargo bench -p xvs-benches --bench pipeline`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use xvs_conntrack::{Addr, ConnTable, DestTable, Fwd, Proto, TableConfig};
use xvs_dataplane::pipeline::{Config, Frame, Pipeline, Verdict};
use xvs_dataplane::service::{Dest, Gateway, Iface, Service, Snapshot, SvcAddr};
use xvs_sched::{SchedFlags, by_name};

const BATCH: usize = 64;
const BUF: usize = 2048;
const HEADROOM: usize = 256;
const DIR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xd0, 0x01];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
const VIP: [u8; 4] = [192, 0, 2, 1];

/// A 64-byte IPv4 TCP frame (10 bytes of payload).
fn tcp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(GW_MAC, DIR_MAC)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    b.write(&mut out, &[0x61; 10]).unwrap();
    assert_eq!(out.len(), 64);
    out
}

fn client(i: usize) -> ([u8; 4], u16) {
    (
        [198, 51, (i >> 8) as u8, i as u8],
        10_000 + (i % 50_000) as u16,
    )
}

struct Bench {
    pipe: Pipeline,
    snap: Arc<Snapshot>,
    bufs: Vec<Vec<u8>>,
}

/// A director with one TCP service on VIP:80 and three real servers of
/// method `fwd`.
fn director(fwd: Fwd, capacity: usize) -> Bench {
    let dests = Arc::new(DestTable::new(16));
    let table = Arc::new(ConnTable::new(
        TableConfig {
            capacity,
            shards: 256,
            prealloc: true,
        },
        dests.clone(),
    ));
    let list = (1..=3u8)
        .map(|n| {
            dests.configure(u32::from(n), 1, 0, 0);
            Dest {
                id: u32::from(n),
                addr: Addr::v4([10, 0, 0, 10 + n]),
                port: if fwd == Fwd::Masq { 8080 } else { 80 },
                fwd,
                weight: 1,
                mac: Some([0x02, 0, 0, 0, 0x10, n]),
                iface: 0,
                svc: 0,
            }
        })
        .collect();
    let svc = Service::new(
        0,
        SvcAddr::Tuple {
            proto: Proto::Tcp,
            vaddr: Addr::v4(VIP),
            vport: 80,
        },
        None,
        list,
        by_name("rr", SchedFlags::NONE).unwrap(),
    );
    let iface = Iface {
        mac: DIR_MAC,
        mtu: 1500,
        addr4: Some([10, 0, 0, 1]),
        addr6: None,
    };
    let snap = Snapshot::new(vec![Arc::new(svc)], &[], vec![iface], 1).with_gateways(
        [Some(Gateway {
            iface: 0,
            mac: GW_MAC,
        }); 2],
    );
    Bench {
        pipe: Pipeline::new(table, Config::default(), 0),
        snap: Arc::new(snap),
        bufs: (0..BATCH).map(|_| vec![0u8; BUF]).collect(),
    }
}

impl Bench {
    /// Copies `templates` into the batch buffers (untimed), then times the
    /// 64 `process` calls.
    fn run_batch(&mut self, now: u64, templates: &[Vec<u8>]) -> Duration {
        for (buf, t) in self.bufs.iter_mut().zip(templates) {
            buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
        }
        let start = Instant::now();
        for (buf, t) in self.bufs.iter_mut().zip(templates) {
            let mut f = Frame::new(buf, HEADROOM, t.len());
            let v = self.pipe.process(now, &self.snap, 0, &mut f);
            black_box(v);
        }
        start.elapsed()
    }

    /// Runs `templates` once and checks every frame was forwarded.
    fn warm(&mut self, templates: &[Vec<u8>]) {
        for (buf, t) in self.bufs.iter_mut().zip(templates) {
            buf[HEADROOM..HEADROOM + t.len()].copy_from_slice(t);
            let mut f = Frame::new(buf, HEADROOM, t.len());
            let v = self.pipe.process(1, &self.snap, 0, &mut f);
            assert!(matches!(v, Verdict::Tx { .. }), "{v:?}");
        }
    }
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("established");
    g.throughput(Throughput::Elements(BATCH as u64));
    let syns: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let (a, p) = client(i);
            tcp_frame(a, VIP, p, 80, true)
        })
        .collect();
    let acks: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let (a, p) = client(i);
            tcp_frame(a, VIP, p, 80, false)
        })
        .collect();
    for (name, fwd, sync) in [
        ("dr", Fwd::Route, false),
        // A sync master runs: every 64th packet of a flow is offered.
        ("dr_sync", Fwd::Route, true),
        ("nat_in", Fwd::Masq, false),
        ("tun", Fwd::Tunnel, false),
    ] {
        let mut b = director(fwd, 1 << 16);
        b.warm(&syns);
        b.warm(&acks);
        b.pipe.sync_tap().set_on(sync);
        g.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let t = b.run_batch(2, &acks);
                        // Untimed: the sync thread's side.
                        b.pipe.sync_tap().drain(usize::MAX, |k| {
                            black_box(k);
                        });
                        t
                    })
                    .sum()
            })
        });
    }
    // NAT replies: real server -> client for the same 64 flows.
    let mut b = director(Fwd::Masq, 1 << 16);
    b.warm(&syns);
    let replies: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let (a, p) = client(i);
            // rr over three servers: flow i went to server i % 3 + 1.
            let rs = [10, 0, 0, 11 + (i % 3) as u8];
            tcp_frame(rs, a, 8080, p, false)
        })
        .collect();
    b.warm(&replies);
    g.bench_function("nat_out", |bench| {
        bench.iter_custom(|iters| (0..iters).map(|_| b.run_batch(2, &replies)).sum())
    });
    g.finish();
}

fn new_conn(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_conn");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut b = director(Fwd::Route, 1 << 16);
    let syns: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let (a, p) = client(i);
            tcp_frame(a, VIP, p, 80, true)
        })
        .collect();
    for (name, sync) in [("dr_rr", false), ("dr_rr_sync", true)] {
        // With a sync master running, every new connection is offered.
        b.pipe.sync_tap().set_on(sync);
        g.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += b.run_batch(2, &syns);
                    // Untimed: empty the table so the next batch creates
                    // again, and the tap as the sync thread would.
                    b.pipe.conns().remove_where(|_| true);
                    b.pipe.sync_tap().drain(usize::MAX, |k| {
                        black_box(k);
                    });
                }
                total
            })
        });
    }
    g.finish();
}

/// Established DR on 1, 2, ... cores at once (up to 4, as the machine
/// has): one pipeline per thread, as one per worker, each with 64 flows of
/// its own (as RSS spreads flows over queues), over one shared connection
/// table and snapshot. An iteration is one batch on every thread at once;
/// its time is the slowest thread's `process` time (restoring the frames
/// stays untimed), so the throughput line is the aggregate packet rate.
/// What it shows: what sharing the table costs as workers are added (the
/// shard locks' cache lines, the entries' counters), without NIC queues.
fn scaling(c: &mut Criterion) {
    let cores = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(4);
    let mut g = c.benchmark_group("scaling_dr");
    for n in 1..=cores {
        let first = director(Fwd::Route, 1 << 16);
        let table = Arc::clone(first.pipe.conns());
        let mut workers: Vec<(Bench, Vec<Vec<u8>>)> = Vec::new();
        for q in 0..n {
            let flows = |syn: bool| -> Vec<Vec<u8>> {
                (0..BATCH)
                    .map(|i| {
                        let (a, p) = client(q * BATCH + i);
                        tcp_frame(a, VIP, p, 80, syn)
                    })
                    .collect()
            };
            let mut b = Bench {
                pipe: Pipeline::new(Arc::clone(&table), Config::default(), q as u32),
                snap: Arc::clone(&first.snap),
                bufs: (0..BATCH).map(|_| vec![0u8; BUF]).collect(),
            };
            let acks = flows(false);
            b.warm(&flows(true));
            b.warm(&acks);
            workers.push((b, acks));
        }
        g.throughput(Throughput::Elements((BATCH * n) as u64));
        g.bench_function(format!("{n}_cores"), |bench| {
            bench.iter_custom(|iters| {
                std::thread::scope(|s| {
                    let handles: Vec<_> = workers
                        .iter_mut()
                        .map(|(b, acks)| {
                            s.spawn(move || {
                                (0..iters).map(|_| b.run_batch(2, acks)).sum::<Duration>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a bench thread panicked"))
                        .max()
                        .unwrap_or_default()
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = established, new_conn, scaling
}
criterion_main!(benches);
