//! `Scheduler::pick` never allocates: every scheduler, in every branch
//! exercised here (hits, misses, fallbacks, failures, lblc/lblcr inserts,
//! evictions and expiry), runs under a global allocator that counts.
//!
//! This file holds a single test so that no other test thread allocates
//! while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xvs_conntrack::{Addr, ConnKey, DestTable, Proto};
use xvs_sched::{DestInfo, Lblc, Lblcr, NAMES, PickCx, PickState, SchedFlags, Scheduler, by_name};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds the `GlobalAlloc` contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn key(i: u32) -> ConnKey {
    ConnKey {
        proto: Proto::Udp,
        caddr: if i.is_multiple_of(3) {
            let mut b = [0u8; 16];
            b[0] = 0x20;
            b[12..].copy_from_slice(&i.to_be_bytes());
            Addr::v6(b)
        } else {
            Addr::v4(i.wrapping_mul(2_654_435_761).to_be_bytes())
        },
        cport: i as u16,
        vaddr: Addr::v4([198, 51, 100, (i % 40) as u8]),
        vport: 53,
    }
}

#[test]
fn pick_never_allocates() {
    let n = 12u32;
    let table = DestTable::new(n as usize);
    let dests: Vec<DestInfo> = (0..n)
        .map(|id| {
            let weight = (id % 4) as i32; // includes quiescent destinations
            table.configure(id, weight, 8, 4);
            DestInfo {
                id,
                addr: Addr::v4([10, 0, 0, id as u8]),
                port: 80,
                weight,
            }
        })
        .collect();
    let flag_sets = [SchedFlags::NONE, SchedFlags::SCHED1 | SchedFlags::SCHED2];
    let mut scheds = Vec::new();
    for &name in NAMES {
        for flags in flag_sets {
            let mut s = by_name(name, flags).unwrap();
            s.update(&dests);
            scheds.push(s);
        }
    }
    // Small tables, so inserts evict.
    let mut small: Vec<Box<dyn Scheduler>> = vec![
        Box::new(Lblc::with_params(8, 2 * 3_600_000)),
        Box::new(Lblcr::with_params(8, 2 * 3_600_000)),
    ];
    for s in &mut small {
        s.update(&dests);
    }
    scheds.extend(small);
    let mut states: Vec<PickState> = (0..scheds.len()).map(|_| PickState::default()).collect();

    let before = ALLOCATIONS.load(Relaxed);
    let mut picked = 0u64;
    for round in 0..2000u32 {
        // Move load and overload flags around between picks.
        let d = round % n;
        table.set_counts(d, round % 11, round % 5);
        if round % 7 == 0 {
            table.configure(d, (d % 4) as i32, 8, 4);
        }
        // Time runs over days so lblc/lblcr entries expire and sets shrink.
        let now_ms = u64::from(round) * 3_600_000;
        for (s, st) in scheds.iter().zip(states.iter_mut()) {
            let mut cx = PickCx {
                dests: &table,
                now_ms,
                state: st,
            };
            if s.pick(&mut cx, &key(round)).is_some() {
                picked += 1;
            }
        }
    }
    let allocations = ALLOCATIONS.load(Relaxed) - before;
    assert!(picked > 10_000, "the picks did something ({picked})");
    assert_eq!(allocations, 0, "pick allocated {allocations} times");

    // The counter is live: an allocation is seen.
    let probe = std::hint::black_box(vec![0u8; 64]);
    assert!(ALLOCATIONS.load(Relaxed) > before, "{}", probe.len());
}
