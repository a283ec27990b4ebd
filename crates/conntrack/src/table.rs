//! The sharded connection table.
//!
//! Layout, per shard (one spin lock each, see the `Mutex` alias; a worker holds it
//! for one lookup or insert, never across a batch):
//! - a slab of 128-byte [`Conn`] entries in 256-entry (32 KiB) chunks, allocated as
//!   the table fills (or all up front with [`TableConfig::prealloc`]) and
//!   never moved, so an entry's slot number is stable;
//! - two bucket arrays of `u32` slot numbers heading intrusive hash chains:
//!   one for the in-direction key, one for the NAT reply key. The chain links
//!   live inside the entry, so the index costs 6 bytes per connection at
//!   full capacity and a hit costs two cache misses (bucket, entry), where an
//!   open-addressing index (`hashbrown::HashTable<u32>`) would cost 5.7-11.4
//!   bytes per key, a third miss, and an occasional whole-shard rehash under
//!   the lock;
//! - a timer wheel of 1024 one-second slots, also linked through the entry.
//!   A packet only rewrites `expires`; the entry is re-filed lazily when its
//!   old slot comes due, so the packet path never touches the wheel.
//!
//! Both directions of a NAT connection hash to the same shard: the shard is
//! chosen from the protocol and the client's address and port, which both
//! keys share. The hash is keyed with a per-table random seed (hashbrown's
//! default hasher), so a remote sender cannot aim at one chain.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crossbeam::utils::CachePadded;
use hashbrown::DefaultHashBuilder;

use crate::addr::{Addr, ConnKey, Proto, ReplyKey};
use crate::conn::{Conn, Fwd, NIL, flags};
use crate::dest::{DestId, DestTable};
use crate::state::{Dir, TcpState, Timeouts, tcp_flags, tcp_next};

/// The shard lock: a spin lock (one atomic to take it, a plain store to
/// release it) whose contended path spins briefly, then yields.
type Mutex<T> = spin::mutex::SpinMutex<T, SpinThenYield>;

/// [`spin::RelaxStrategy`] for the shard locks: a short burst of pause
/// instructions (a worker's critical section is tens of nanoseconds), then
/// a yield, so a holder preempted on the same core gets to finish.
struct SpinThenYield;

impl spin::RelaxStrategy for SpinThenYield {
    #[inline]
    fn relax() {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        std::thread::yield_now();
    }
}

/// A connection's identity across the whole table: `slot * shards + shard`.
pub type ConnId = u32;

const CHUNK_BITS: u32 = 8;
const CHUNK: usize = 1 << CHUNK_BITS;
const WHEEL_SLOTS: usize = 1024;
/// Wheel granularity in milliseconds.
pub const TICK_MS: u64 = 1000;
/// Longest timeout an entry can hold (`u32` milliseconds, about 49 days).
pub const MAX_TIMEOUT_MS: u64 = u32::MAX as u64;
/// A connection is offered to the sync master every this many packets
/// (a power of two, so the test is a mask: IPVS's default `sync_period` is 50).
pub const SYNC_PERIOD: u64 = 64;
/// ... starting at this packet count (IPVS's `sync_threshold`).
pub const SYNC_THRESHOLD: u64 = 3;
/// Tags a wheel `tw_prev` link as "head of wheel slot n".
const HEAD_TAG: u32 = 1 << 31;

/// Sizing of a [`ConnTable`].
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// Most entries (connections and templates) the table holds.
    pub capacity: usize,
    /// Number of shards (rounded up to a power of two, at least 1).
    pub shards: usize,
    /// Allocate every slab chunk at creation instead of as the table fills.
    pub prealloc: bool,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            capacity: 1 << 20,
            shards: 256,
            prealloc: false,
        }
    }
}

/// Run-time switches with IPVS's sysctl names.
#[derive(Debug)]
pub struct Settings {
    /// `expire_nodest_conn`: a packet for a connection whose destination was
    /// deleted expires the connection (and is dropped) instead of still
    /// being forwarded to the deleted server.
    pub expire_nodest_conn: AtomicBool,
    /// `expire_quiescent_template`: a template whose destination has weight
    /// 0 is not reused for new connections.
    pub expire_quiescent_template: AtomicBool,
    /// `conn_reuse_mode`: a SYN matching a connection in TIME_WAIT or CLOSE
    /// (or FIN_WAIT without output, i.e. DR/TUN) expires it and is scheduled
    /// afresh.
    pub conn_reuse: AtomicBool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expire_nodest_conn: AtomicBool::new(false),
            expire_quiescent_template: AtomicBool::new(false),
            conn_reuse: AtomicBool::new(true),
        }
    }
}

/// What a hit tells the pipeline about its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnView {
    /// Table identity (for templates: what [`NewConn::template`] takes).
    pub id: ConnId,
    /// Destination slot.
    pub dest: DestId,
    /// Forwarding method.
    pub fwd: Fwd,
    /// Client address and port.
    pub caddr: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: Addr,
    /// Real server port.
    pub dport: u16,
    /// TCP state after this packet.
    pub state: TcpState,
    /// This packet created the entry, changed its TCP state, or is one of
    /// the periodic refreshes ([`SYNC_PERIOD`]): a connection-sync master
    /// sends the entry to its backups.
    pub sync: bool,
}

impl ConnView {
    /// The view of entry `c` with table identity `id` (for entries read
    /// with [`ConnTable::peek_in`] / [`ConnTable::peek_out`], which carry
    /// no identity: pass 0).
    pub fn of(c: &Conn, id: ConnId) -> ConnView {
        ConnView {
            id,
            dest: c.dest,
            fwd: c.fwd(),
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            state: c.tcp_state(),
            sync: false,
        }
    }

    #[inline]
    fn synced(mut self, sync: bool) -> ConnView {
        self.sync = sync;
        self
    }
}

/// Result of an in-direction lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InLookup {
    /// Known connection; state, counters and expiry were updated.
    Hit(ConnView),
    /// No connection: schedule a new one if the packet may start one.
    Miss,
    /// The connection's destination was deleted and `expire_nodest_conn` is
    /// on: the connection was expired; drop the packet.
    NoDest,
}

/// A connection to create.
#[derive(Clone, Copy, Debug)]
pub struct NewConn {
    /// In-direction key.
    pub key: ConnKey,
    /// Real server address.
    pub daddr: Addr,
    /// Real server port.
    pub dport: u16,
    /// Destination slot.
    pub dest: DestId,
    /// Forwarding method.
    pub fwd: Fwd,
    /// The persistence template controlling this connection, as returned
    /// (already referenced) by [`ConnTable::acquire_template`] or
    /// [`ConnTable::create_template`]; the table releases it when the
    /// connection goes.
    pub template: Option<ConnId>,
}

/// Result of [`ConnTable::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Created, and the first packet applied to it.
    New(ConnView),
    /// Another worker created it first; the packet was applied to that one
    /// and the caller's template reference was released.
    Existing(ConnView),
}

/// An entry received from a connection-sync master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synced {
    /// In-direction key (templates: the template key).
    pub key: ConnKey,
    /// Real server address.
    pub daddr: Addr,
    /// Real server port.
    pub dport: u16,
    /// The local destination slot of that real server.
    pub dest: DestId,
    /// Forwarding method.
    pub fwd: Fwd,
    /// TCP state on the master.
    pub state: TcpState,
    /// A persistence template rather than a connection.
    pub template: bool,
    /// Timeout in milliseconds from now.
    pub timeout_ms: u64,
}

/// Result of [`ConnTable::install`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    /// A new entry.
    New,
    /// An existing entry refreshed.
    Updated,
}

/// Why an entry could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table is at capacity. The caller's template
    /// reference was released.
    Full,
}

/// A persistence template to create.
#[derive(Clone, Copy, Debug)]
pub struct NewTemplate {
    /// IPVS template key: protocol (`Any` for fwmark services), client
    /// address masked by the persistence netmask, port 0, virtual address
    /// (or fwmark) and port (0 for port-zero and fwmark services).
    pub key: ConnKey,
    /// Real server address.
    pub daddr: Addr,
    /// Real server port.
    pub dport: u16,
    /// Destination slot.
    pub dest: DestId,
    /// Forwarding method of the destination.
    pub fwd: Fwd,
    /// Persistence timeout in milliseconds.
    pub timeout_ms: u64,
}

/// One shard. `repr(C)` with the lookup's fields first: after the mutex's
/// word they share the shard's first cache line, and the whole mutex fits
/// one 128-byte [`CachePadded`] slot.
#[repr(C)]
struct Shard {
    /// Fixed-size chunks: the index within one is masked, so it needs no
    /// bounds check.
    chunks: Vec<Box<[Conn; CHUNK]>>,
    /// Heads of the in-key chains (a power of two of them: `len - 1` is
    /// the bucket mask).
    in_heads: Box<[u32]>,
    /// Heads of the reply-key chains (also a power of two).
    out_heads: Box<[u32]>,
    /// Slots ever handed out (the slab's high-water mark).
    used: u32,
    /// Head of the free list (linked through `next_in`).
    free: u32,
    len: u32,
    wheel: Box<[u32]>,
    /// Next wheel tick to process.
    cursor: u64,
    created: u64,
    expired: u64,
    full: u64,
}

const _: () = assert!(size_of::<CachePadded<Mutex<Shard>>>() <= 128);

/// Which hash chain: in-direction keys or NAT reply keys.
#[derive(Clone, Copy)]
enum Chain {
    In,
    Out,
}

impl Chain {
    #[inline]
    fn next(self, c: &Conn) -> u32 {
        match self {
            Chain::In => c.next_in,
            Chain::Out => c.next_out,
        }
    }

    #[inline]
    fn next_mut(self, c: &mut Conn) -> &mut u32 {
        match self {
            Chain::In => &mut c.next_in,
            Chain::Out => &mut c.next_out,
        }
    }

    fn flag(self) -> u16 {
        match self {
            Chain::In => flags::HASHED_IN,
            Chain::Out => flags::HASHED_OUT,
        }
    }
}

/// A wheel list being rebuilt during expiry, with its tail at hand.
#[derive(Clone, Copy)]
struct LocalList {
    head: u32,
    tail: u32,
}

impl Default for LocalList {
    fn default() -> Self {
        LocalList {
            head: NIL,
            tail: NIL,
        }
    }
}

impl LocalList {
    fn push(&mut self, sh: &mut Shard, slot: u32) {
        {
            let c = sh.at_mut(slot);
            c.tw_prev = self.tail;
            c.tw_next = NIL;
        }
        if self.tail == NIL {
            self.head = slot;
        } else {
            sh.at_mut(self.tail).tw_next = slot;
        }
        self.tail = slot;
    }

    /// Appends an already linked chain starting at `first` (its internal
    /// links are kept).
    fn append_raw(&mut self, sh: &mut Shard, first: u32) {
        if first == NIL {
            return;
        }
        sh.at_mut(first).tw_prev = self.tail;
        if self.tail == NIL {
            self.head = first;
        } else {
            sh.at_mut(self.tail).tw_next = first;
        }
    }
}

/// One packet as a hit applies it: its time, direction, TCP flags (0 for
/// other protocols) and IP length.
#[derive(Clone, Copy)]
struct Packet {
    now: u64,
    dir: Dir,
    tcp: u8,
    bytes: u32,
}

impl Packet {
    #[inline(always)]
    fn new(now: u64, dir: Dir, tcp: u8, bytes: u32) -> Packet {
        Packet {
            now,
            dir,
            tcp,
            bytes,
        }
    }
}

/// Work left for after a shard lock is released.
#[derive(Default)]
struct Deferred {
    /// Templates to release (one reference each).
    release: Vec<ConnId>,
}

/// The connection table. See the module documentation for its layout.
pub struct ConnTable {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Live entries across all shards, against `capacity`. Touched only
    /// when an entry is created or removed, never per packet.
    live: CachePadded<AtomicUsize>,
    capacity: usize,
    /// Highest slot number a shard may hand out (ids are `slot << bits | shard`).
    max_slots: u32,
    shard_bits: u32,
    hasher: DefaultHashBuilder,
    dests: Arc<DestTable>,
    /// Protocol timeouts, settable at run time.
    pub timeouts: Timeouts,
    /// IPVS sysctl-like switches.
    pub settings: Settings,
}

impl std::fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTable")
            .field("shards", &self.shards.len())
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[inline]
fn tick_of(ms: u64) -> u64 {
    ms / TICK_MS
}

impl Shard {
    /// A shard expected to hold about `per` entries.
    fn new(per: u32, prealloc: bool) -> Shard {
        let in_buckets = (per as usize).next_power_of_two().max(16);
        let out_buckets = (in_buckets / 2).max(16);
        let mut s = Shard {
            chunks: Vec::new(),
            used: 0,
            free: NIL,
            len: 0,
            in_heads: vec![NIL; in_buckets].into_boxed_slice(),
            out_heads: vec![NIL; out_buckets].into_boxed_slice(),
            wheel: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            cursor: 0,
            created: 0,
            expired: 0,
            full: 0,
        };
        if prealloc {
            let chunks = (per as usize).div_ceil(CHUNK);
            s.chunks.reserve_exact(chunks);
            for _ in 0..chunks {
                s.chunks.push(Shard::new_chunk());
            }
        }
        s
    }

    /// A chunk of empty entries, built on the heap (32 KiB would be a large
    /// stack copy).
    fn new_chunk() -> Box<[Conn; CHUNK]> {
        match vec![Conn::EMPTY; CHUNK].into_boxed_slice().try_into() {
            Ok(chunk) => chunk,
            Err(_) => unreachable!("a vector of CHUNK entries"),
        }
    }

    #[inline]
    fn at(&self, slot: u32) -> &Conn {
        &self.chunks[(slot >> CHUNK_BITS) as usize][slot as usize & (CHUNK - 1)]
    }

    #[inline]
    fn at_mut(&mut self, slot: u32) -> &mut Conn {
        &mut self.chunks[(slot >> CHUNK_BITS) as usize][slot as usize & (CHUNK - 1)]
    }

    /// Takes a free slot; the caller has reserved capacity
    /// ([`ConnTable::reserve`]) and `max_slots` bounds the slot number.
    fn alloc(&mut self, max_slots: u32) -> Option<u32> {
        if self.free == NIL && self.used >= max_slots {
            return None;
        }
        let slot = if self.free != NIL {
            let s = self.free;
            self.free = self.at(s).next_in;
            s
        } else {
            let s = self.used;
            if (s as usize) >= self.chunks.len() * CHUNK {
                // Amortised: one 32 KiB chunk per 256 new entries, never per packet.
                self.chunks.push(Shard::new_chunk());
            }
            self.used += 1;
            s
        };
        self.len += 1;
        Some(slot)
    }

    fn free_slot(&mut self, slot: u32) {
        let head = self.free;
        let c = self.at_mut(slot);
        *c = Conn::EMPTY;
        c.next_in = head;
        self.free = slot;
        self.len -= 1;
    }

    #[inline(always)]
    fn find_in(&self, h: u64, k: &ConnKey) -> Option<u32> {
        let mut s = self.in_heads[self.bucket(Chain::In, h)];
        while s != NIL {
            let c = self.at(s);
            if c.matches_in(k) {
                return Some(s);
            }
            s = c.next_in;
        }
        None
    }

    #[inline(always)]
    fn find_out(&self, h: u64, k: &ReplyKey) -> Option<u32> {
        let mut s = self.out_heads[self.bucket(Chain::Out, h)];
        while s != NIL {
            let c = self.at(s);
            if c.matches_out(k) {
                return Some(s);
            }
            s = c.next_out;
        }
        None
    }

    fn link_in(&mut self, h: u64, slot: u32) {
        self.link(Chain::In, h, slot);
    }

    fn link_out(&mut self, h: u64, slot: u32) {
        self.link(Chain::Out, h, slot);
    }

    fn unlink_in(&mut self, h: u64, slot: u32) {
        self.unlink(Chain::In, h, slot);
    }

    fn unlink_out(&mut self, h: u64, slot: u32) {
        self.unlink(Chain::Out, h, slot);
    }

    /// The bucket of `h` in one chain's head array.
    #[inline]
    fn bucket(&self, chain: Chain, h: u64) -> usize {
        let heads = match chain {
            Chain::In => &self.in_heads,
            Chain::Out => &self.out_heads,
        };
        // The mask keeps the index in bounds, so the check folds away.
        (h as usize) & (heads.len() - 1)
    }

    fn heads_mut(&mut self, chain: Chain) -> &mut [u32] {
        match chain {
            Chain::In => &mut self.in_heads,
            Chain::Out => &mut self.out_heads,
        }
    }

    fn link(&mut self, chain: Chain, h: u64, slot: u32) {
        let b = self.bucket(chain, h);
        let head = self.heads_mut(chain)[b];
        let c = self.at_mut(slot);
        *chain.next_mut(c) = head;
        c.flags |= chain.flag();
        self.heads_mut(chain)[b] = slot;
    }

    fn unlink(&mut self, chain: Chain, h: u64, slot: u32) {
        let b = self.bucket(chain, h);
        let next = chain.next(self.at(slot));
        if self.heads_mut(chain)[b] == slot {
            self.heads_mut(chain)[b] = next;
        } else {
            let mut p = self.heads_mut(chain)[b];
            while p != NIL {
                let pn = chain.next(self.at(p));
                if pn == slot {
                    *chain.next_mut(self.at_mut(p)) = next;
                    break;
                }
                p = pn;
            }
        }
        let c = self.at_mut(slot);
        *chain.next_mut(c) = NIL;
        c.flags &= !chain.flag();
    }

    /// The wheel slot an entry belongs in: that of its expiry, or the next
    /// one due if its expiry is already past.
    fn wheel_index(&self, slot: u32) -> usize {
        let tick = tick_of(self.at(slot).expires).max(self.cursor);
        (tick % WHEEL_SLOTS as u64) as usize
    }

    /// Files `slot` in the wheel slot of its expiry (or the next slot due,
    /// if that is already past).
    fn wheel_push(&mut self, slot: u32) {
        let w = self.wheel_index(slot) as u32;
        let head = self.wheel[w as usize];
        if head != NIL {
            self.at_mut(head).tw_prev = slot;
        }
        let c = self.at_mut(slot);
        c.tw_next = head;
        c.tw_prev = HEAD_TAG | w;
        self.wheel[w as usize] = slot;
    }

    fn wheel_unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let c = self.at(slot);
            (c.tw_prev, c.tw_next)
        };
        if prev & HEAD_TAG != 0 {
            let w = (prev & !HEAD_TAG) as usize;
            if w < WHEEL_SLOTS && self.wheel[w] == slot {
                self.wheel[w] = next;
            }
        } else if prev != NIL {
            self.at_mut(prev).tw_next = next;
        }
        if next != NIL {
            self.at_mut(next).tw_prev = prev;
        }
        let c = self.at_mut(slot);
        c.tw_prev = NIL;
        c.tw_next = NIL;
    }
}

impl ConnTable {
    /// A table sized by `cfg`, counting connections on `dests`.
    pub fn new(cfg: TableConfig, dests: Arc<DestTable>) -> ConnTable {
        let n = cfg.shards.clamp(1, 1 << 16).next_power_of_two();
        let max_slots = ((HEAD_TAG as usize - 1) / n) as u32;
        let capacity = cfg.capacity.clamp(1, HEAD_TAG as usize - 1);
        let per = capacity.div_ceil(n).min(max_slots as usize);
        let shards = (0..n)
            .map(|_| CachePadded::new(Mutex::new(Shard::new(per as u32, cfg.prealloc))))
            .collect();
        ConnTable {
            shards,
            live: CachePadded::new(AtomicUsize::new(0)),
            capacity,
            max_slots,
            shard_bits: n.trailing_zeros(),
            hasher: DefaultHashBuilder::default(),
            dests,
            timeouts: Timeouts::default(),
            settings: Settings::default(),
        }
    }

    /// The destination arena this table counts on.
    pub fn dests(&self) -> &Arc<DestTable> {
        &self.dests
    }

    /// Most entries the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live entries (connections and templates).
    pub fn len(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Takes one entry of capacity and a slot of `sh`, or counts a refusal.
    fn reserve(&self, sh: &mut Shard) -> Option<u32> {
        let ok = self
            .live
            .fetch_update(Relaxed, Relaxed, |n| (n < self.capacity).then_some(n + 1))
            .is_ok();
        if ok {
            if let Some(slot) = sh.alloc(self.max_slots) {
                return Some(slot);
            }
            self.live.fetch_sub(1, Relaxed);
        }
        sh.full += 1;
        None
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Created / expired / refused-full counts, summed over shards.
    pub fn stats(&self) -> (u64, u64, u64) {
        self.shards.iter().fold((0, 0, 0), |a, s| {
            let s = s.lock();
            (a.0 + s.created, a.1 + s.expired, a.2 + s.full)
        })
    }

    #[inline]
    fn client_hash(&self, proto: Proto, caddr: &Addr, cport: u16) -> u64 {
        self.hasher.hash_one((proto as u8, caddr, cport))
    }

    #[inline]
    fn shard_of(&self, hc: u64) -> usize {
        if self.shard_bits == 0 {
            0
        } else {
            (hc >> (64 - self.shard_bits)) as usize
        }
    }

    #[inline]
    fn in_hash(&self, hc: u64, k: &ConnKey) -> u64 {
        self.hasher.hash_one((hc, &k.vaddr, k.vport))
    }

    #[inline]
    fn out_hash(&self, hc: u64, daddr: &Addr, dport: u16) -> u64 {
        self.hasher.hash_one((hc, daddr, dport))
    }

    #[inline]
    fn id(&self, shard: usize, slot: u32) -> ConnId {
        (slot << self.shard_bits) | shard as u32
    }

    #[inline]
    fn split(&self, id: ConnId) -> (usize, u32) {
        (
            (id & ((1u32 << self.shard_bits) - 1)) as usize,
            id >> self.shard_bits,
        )
    }

    /// Applies one packet to a connection: counters, protocol state, active/
    /// inactive accounting, expiry.
    /// Applies one packet to `c`; returns whether backups should hear of
    /// it (a TCP state change, or every [`SYNC_PERIOD`] packets from the
    /// [`SYNC_THRESHOLD`]th on, as IPVS's `sync_threshold`/`sync_period`).
    #[inline(always)]
    fn touch(&self, c: &mut Conn, dir: Dir, tcp: u8, bytes: u32, now: u64) -> bool {
        match dir {
            Dir::In => {
                c.in_pkts += 1;
                c.in_bytes += u64::from(bytes);
            }
            Dir::Out => {
                c.out_pkts += 1;
                c.out_bytes += u64::from(bytes);
            }
        }
        let pkts = c.in_pkts.wrapping_add(c.out_pkts);
        let mut sync = pkts & (SYNC_PERIOD - 1) == SYNC_THRESHOLD;
        let timeout = if c.proto == Proto::Tcp as u8 {
            let input_only = c.flags & flags::NOOUTPUT != 0;
            if input_only && dir == Dir::Out {
                c.flags &= !flags::NOOUTPUT;
            }
            let old = c.tcp_state();
            let new = tcp_next(old, dir, input_only && dir == Dir::In, tcp);
            if new != old {
                let inactive = c.flags & flags::INACTIVE != 0;
                if !inactive && !new.is_active() {
                    self.dests.get(c.dest).activate(false);
                    c.flags |= flags::INACTIVE;
                } else if inactive && new.is_active() {
                    self.dests.get(c.dest).activate(true);
                    c.flags &= !flags::INACTIVE;
                }
                c.state = new as u8;
                sync = true;
            }
            self.timeouts.tcp_ms(new)
        } else {
            self.timeouts.udp_ms()
        };
        c.timeout_ms = timeout.min(MAX_TIMEOUT_MS) as u32;
        c.expires = now.saturating_add(timeout);
        sync
    }

    /// [`Self::touch`] for an entry already in the wheel. The wheel
    /// invariant is "filed no later than its expiry": a later expiry needs
    /// nothing (the entry is re-filed when its old slot comes due), an
    /// earlier one (a state with a shorter timeout) re-files it now.
    /// Returns the hit's view (what the packet path reads) with its sync flag.
    #[inline(always)]
    fn touch_filed(&self, sh: &mut Shard, at: (usize, u32), p: Packet) -> ConnView {
        let (si, slot) = at;
        let c = sh.at_mut(slot);
        let before = c.expires;
        let sync = self.touch(c, p.dir, p.tcp, p.bytes, p.now);
        let after = c.expires;
        let view = ConnView::of(c, self.id(si, slot)).synced(sync);
        // Steady traffic moves expiry later: no division, no wheel work.
        if after < before && tick_of(after) < tick_of(before) {
            sh.wheel_unlink(slot);
            sh.wheel_push(slot);
        }
        view
    }

    /// Removes `slot` from every index, the wheel and its destination's
    /// counts, and frees it. A controlled connection's template reference is
    /// queued in `d` for release after the lock is dropped.
    fn remove(&self, sh: &mut Shard, slot: u32, d: &mut Deferred) {
        let c = *sh.at(slot);
        let hc = self.client_hash(c.proto(), &c.caddr, c.cport);
        if c.flags & flags::HASHED_IN != 0 {
            sh.unlink_in(self.in_hash(hc, &c.key()), slot);
        }
        if c.flags & flags::HASHED_OUT != 0 {
            sh.unlink_out(self.out_hash(hc, &c.daddr, c.dport), slot);
        }
        if c.tw_prev != NIL {
            sh.wheel_unlink(slot);
        }
        self.dests
            .get(c.dest)
            .unbind(c.is_template(), c.flags & flags::INACTIVE == 0);
        if c.flags & flags::CONTROLLED != 0 {
            d.release.push(c.control);
        }
        sh.free_slot(slot);
        sh.expired += 1;
        self.live.fetch_sub(1, Relaxed);
    }

    fn finish(&self, d: Deferred) {
        for t in d.release {
            self.release_template(t);
        }
    }

    /// Looks up a client -> server packet and applies it on a hit.
    ///
    /// `tcp` is the TCP flags byte (0 for other protocols), `bytes` the IP
    /// length counted in the statistics.
    pub fn lookup_in(&self, now: u64, k: &ConnKey, tcp: u8, bytes: u32) -> InLookup {
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let h = self.in_hash(hc, k);
        let si = self.shard_of(hc);
        let mut sh = self.shards[si].lock();
        let Some(slot) = sh.find_in(h, k) else {
            return InLookup::Miss;
        };
        let c = sh.at(slot);
        // The switch first: off (the default), the packet path never reads
        // the destination's line.
        let verdict = if self.settings.expire_nodest_conn.load(Relaxed)
            && !self.dests.get(c.dest).is_available()
        {
            InLookup::NoDest
        } else if self.reusable(c, k.proto, tcp) {
            InLookup::Miss
        } else {
            let p = Packet::new(now, Dir::In, tcp, bytes);
            return InLookup::Hit(self.touch_filed(&mut sh, (si, slot), p));
        };
        // Rare: the entry goes. Its template reference is released once the
        // shard's lock is dropped.
        let mut d = Deferred::default();
        self.remove(&mut sh, slot, &mut d);
        drop(sh);
        self.finish(d);
        verdict
    }

    /// IPVS `conn_reuse_mode`: a fresh SYN on a closing connection starts a
    /// new one.
    fn reusable(&self, c: &Conn, proto: Proto, tcp: u8) -> bool {
        proto == Proto::Tcp
            && tcp & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN
            && self.settings.conn_reuse.load(Relaxed)
            && match c.tcp_state() {
                TcpState::TimeWait | TcpState::Close => true,
                TcpState::FinWait => c.flags & flags::NOOUTPUT != 0,
                _ => false,
            }
    }

    /// Looks up a server -> client packet (NAT reply) and applies it on a hit.
    pub fn lookup_out(&self, now: u64, k: &ReplyKey, tcp: u8, bytes: u32) -> Option<ConnView> {
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let h = self.out_hash(hc, &k.daddr, k.dport);
        let si = self.shard_of(hc);
        let mut sh = self.shards[si].lock();
        let slot = sh.find_out(h, k)?;
        let p = Packet::new(now, Dir::Out, tcp, bytes);
        Some(self.touch_filed(&mut sh, (si, slot), p))
    }

    /// Reads an entry by key without changing it (ICMP errors, listings).
    pub fn peek_in(&self, k: &ConnKey) -> Option<Conn> {
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let sh = self.shards[self.shard_of(hc)].lock();
        sh.find_in(self.in_hash(hc, k), k).map(|s| *sh.at(s))
    }

    /// Reads an entry by reply key without changing it.
    pub fn peek_out(&self, k: &ReplyKey) -> Option<Conn> {
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let sh = self.shards[self.shard_of(hc)].lock();
        sh.find_out(self.out_hash(hc, &k.daddr, k.dport), k)
            .map(|s| *sh.at(s))
    }

    /// Creates a connection for the first packet of a flow and applies that
    /// packet to it. Safe against a concurrent insert of the same key.
    pub fn insert(
        &self,
        now: u64,
        n: &NewConn,
        tcp: u8,
        bytes: u32,
    ) -> Result<Inserted, InsertError> {
        let k = &n.key;
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let h = self.in_hash(hc, k);
        let si = self.shard_of(hc);
        let mut d = Deferred::default();
        let r = {
            let mut sh = self.shards[si].lock();
            if let Some(slot) = sh.find_in(h, k) {
                d.release.extend(n.template);
                let p = Packet::new(now, Dir::In, tcp, bytes);
                Ok(Inserted::Existing(self.touch_filed(&mut sh, (si, slot), p)))
            } else if let Some(slot) = self.reserve(&mut sh) {
                let mut f = flags::LIVE | flags::INACTIVE;
                if n.fwd != Fwd::Masq {
                    f |= flags::NOOUTPUT;
                }
                if n.template.is_some() {
                    f |= flags::CONTROLLED | flags::PERSISTENT;
                }
                {
                    let c = sh.at_mut(slot);
                    *c = Conn {
                        caddr: k.caddr,
                        vaddr: k.vaddr,
                        daddr: n.daddr,
                        cport: k.cport,
                        vport: k.vport,
                        dport: n.dport,
                        proto: k.proto as u8,
                        state: TcpState::None as u8,
                        fwd: n.fwd as u8,
                        flags: f,
                        dest: n.dest,
                        control: n.template.unwrap_or(0),
                        ..Conn::EMPTY
                    };
                }
                self.dests.get(n.dest).bind(false, false);
                self.touch(sh.at_mut(slot), Dir::In, tcp, bytes, now);
                sh.link_in(h, slot);
                if n.fwd == Fwd::Masq {
                    sh.link_out(self.out_hash(hc, &n.daddr, n.dport), slot);
                }
                sh.wheel_push(slot);
                sh.created += 1;
                Ok(Inserted::New(
                    ConnView::of(sh.at(slot), self.id(si, slot)).synced(true),
                ))
            } else {
                d.release.extend(n.template);
                Err(InsertError::Full)
            }
        };
        self.finish(d);
        r
    }

    /// Finds a valid persistence template for `key` and takes a reference
    /// on it (the connection created with it releases the reference when it
    /// goes). The template's expiry is pushed to now + its timeout, as IPVS
    /// does on every new connection under a template.
    ///
    /// A template is invalid (IPVS `ip_vs_check_template`) when its
    /// destination was deleted, or has weight 0 while
    /// `expire_quiescent_template` is set: it is then unhashed, so the
    /// caller schedules afresh, and freed once its connections are gone.
    pub fn acquire_template(&self, now: u64, key: &ConnKey) -> Option<(ConnId, ConnView)> {
        let hc = self.client_hash(key.proto, &key.caddr, key.cport);
        let h = self.in_hash(hc, key);
        let si = self.shard_of(hc);
        let mut sh = self.shards[si].lock();
        let slot = sh.find_in(h, key)?;
        let c = sh.at(slot);
        if !c.is_template() {
            return None;
        }
        let dest = self.dests.get(c.dest);
        let quiescent = dest.weight() == 0 && self.settings.expire_quiescent_template.load(Relaxed);
        if !dest.is_available() || quiescent {
            sh.unlink_in(h, slot);
            return None;
        }
        let c = sh.at_mut(slot);
        c.control += 1;
        c.expires = now.saturating_add(u64::from(c.timeout_ms));
        let id = self.id(si, slot);
        Some((id, ConnView::of(c, id)))
    }

    /// Creates a persistence template holding one reference (for the
    /// connection about to be created). If another worker created it first,
    /// takes a reference on that one instead.
    pub fn create_template(
        &self,
        now: u64,
        t: &NewTemplate,
    ) -> Result<(ConnId, ConnView), InsertError> {
        let k = &t.key;
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let h = self.in_hash(hc, k);
        let si = self.shard_of(hc);
        let mut sh = self.shards[si].lock();
        if let Some(slot) = sh.find_in(h, k) {
            let c = sh.at_mut(slot);
            if c.is_template() {
                c.control += 1;
                c.expires = now.saturating_add(u64::from(c.timeout_ms));
                let id = self.id(si, slot);
                return Ok((id, ConnView::of(c, id)));
            }
        }
        let Some(slot) = self.reserve(&mut sh) else {
            return Err(InsertError::Full);
        };
        let timeout = t.timeout_ms.min(MAX_TIMEOUT_MS);
        *sh.at_mut(slot) = Conn {
            caddr: k.caddr,
            vaddr: k.vaddr,
            daddr: t.daddr,
            cport: k.cport,
            vport: k.vport,
            dport: t.dport,
            proto: k.proto as u8,
            state: TcpState::None as u8,
            fwd: t.fwd as u8,
            flags: flags::LIVE | flags::TEMPLATE,
            dest: t.dest,
            expires: now.saturating_add(timeout),
            timeout_ms: timeout as u32,
            control: 1,
            ..Conn::EMPTY
        };
        self.dests.get(t.dest).bind(true, false);
        sh.link_in(h, slot);
        sh.wheel_push(slot);
        sh.created += 1;
        let id = self.id(si, slot);
        Ok((id, ConnView::of(sh.at(slot), id).synced(true)))
    }

    /// Installs or refreshes an entry a sync master sent (IPVS
    /// `ip_vs_proc_conn`): an existing entry takes the new state, real
    /// server and timeout; a new one is created with them. Synced
    /// connections are not linked to a template (their template, if any,
    /// is synced as an entry of its own).
    pub fn install(&self, now: u64, e: &Synced) -> Result<Installed, InsertError> {
        let k = &e.key;
        let hc = self.client_hash(k.proto, &k.caddr, k.cport);
        let h = self.in_hash(hc, k);
        let si = self.shard_of(hc);
        let timeout = e.timeout_ms.min(MAX_TIMEOUT_MS);
        let active = !e.template && e.state.is_active();
        let mut sh = self.shards[si].lock();
        if let Some(slot) = sh.find_in(h, k) {
            let c = *sh.at(slot);
            if c.is_template() != e.template
                || c.dest != e.dest
                || c.daddr != e.daddr
                || c.dport != e.dport
                || c.fwd != e.fwd as u8
            {
                // The master moved the flow (or a stale local entry
                // disagrees): the master's view wins.
                let mut d = Deferred::default();
                self.remove(&mut sh, slot, &mut d);
                drop(sh);
                self.finish(d);
                return self.install(now, e);
            }
            let was_active = !c.is_template() && c.flags & flags::INACTIVE == 0;
            if !c.is_template() && was_active != active {
                self.dests.get(c.dest).activate(active);
            }
            let before = c.expires;
            let cm = sh.at_mut(slot);
            if !cm.is_template() {
                cm.state = e.state as u8;
                if active {
                    cm.flags &= !flags::INACTIVE;
                } else {
                    cm.flags |= flags::INACTIVE;
                }
            }
            cm.timeout_ms = timeout as u32;
            cm.expires = now.saturating_add(timeout);
            if tick_of(cm.expires) < tick_of(before) {
                sh.wheel_unlink(slot);
                sh.wheel_push(slot);
            }
            return Ok(Installed::Updated);
        }
        let Some(slot) = self.reserve(&mut sh) else {
            return Err(InsertError::Full);
        };
        let mut f = flags::LIVE;
        if e.template {
            f |= flags::TEMPLATE;
        } else {
            if !active {
                f |= flags::INACTIVE;
            }
            if e.fwd != Fwd::Masq {
                f |= flags::NOOUTPUT;
            }
        }
        *sh.at_mut(slot) = Conn {
            caddr: k.caddr,
            vaddr: k.vaddr,
            daddr: e.daddr,
            cport: k.cport,
            vport: k.vport,
            dport: e.dport,
            proto: k.proto as u8,
            state: if e.template {
                TcpState::None as u8
            } else {
                e.state as u8
            },
            fwd: e.fwd as u8,
            flags: f,
            dest: e.dest,
            expires: now.saturating_add(timeout),
            timeout_ms: timeout as u32,
            ..Conn::EMPTY
        };
        self.dests.get(e.dest).bind(e.template, active);
        sh.link_in(h, slot);
        if !e.template && e.fwd == Fwd::Masq {
            sh.link_out(self.out_hash(hc, &e.daddr, e.dport), slot);
        }
        sh.wheel_push(slot);
        sh.created += 1;
        Ok(Installed::New)
    }

    /// Drops one reference on a template (a controlled connection went).
    pub fn release_template(&self, id: ConnId) {
        let (si, slot) = self.split(id);
        let Some(shard) = self.shards.get(si) else {
            return;
        };
        let mut sh = shard.lock();
        if (slot as usize) < (sh.used as usize) {
            let c = sh.at_mut(slot);
            if c.is_template() && c.control > 0 {
                c.control -= 1;
            }
        }
    }

    /// Expires due entries. Call it from a slow path every few hundred
    /// milliseconds with a budget (entries examined per shard) so no shard
    /// lock is held long; shards another thread is expiring are skipped.
    /// Returns the number of entries removed.
    pub fn expire(&self, now: u64, budget_per_shard: usize) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let Some(mut sh) = shard.try_lock() else {
                continue;
            };
            let mut d = Deferred::default();
            removed += self.expire_shard(&mut sh, now, budget_per_shard, &mut d);
            drop(sh);
            self.finish(d);
        }
        removed
    }

    fn expire_shard(&self, sh: &mut Shard, now: u64, budget: usize, d: &mut Deferred) -> usize {
        let now_tick = tick_of(now);
        let mut left = budget;
        let mut removed = 0;
        if sh.len == 0 {
            sh.cursor = sh.cursor.max(now_tick);
            return 0;
        }
        // A clock far ahead of the cursor: one revolution visits every slot.
        if now_tick > sh.cursor + WHEEL_SLOTS as u64 {
            sh.cursor = now_tick - WHEEL_SLOTS as u64;
        }
        while sh.cursor <= now_tick && left > 0 {
            let w = (sh.cursor % WHEEL_SLOTS as u64) as usize;
            // Detach the slot's list. Entries not yet due are re-filed; those
            // that belong to this same wheel slot again (a later revolution,
            // or later in the current tick) are kept on a local list so the
            // walk never meets them twice.
            let mut s = std::mem::replace(&mut sh.wheel[w], NIL);
            let mut keep = LocalList::default();
            while s != NIL && left > 0 {
                left -= 1;
                let next = sh.at(s).tw_next;
                let c = *sh.at(s);
                let due = c.expires <= now;
                if due && !(c.is_template() && c.control > 0) {
                    sh.at_mut(s).tw_prev = NIL;
                    self.remove(sh, s, d);
                    removed += 1;
                } else {
                    if due {
                        // IPVS: a template lives on while it controls connections.
                        sh.at_mut(s).expires = now.saturating_add(u64::from(c.timeout_ms));
                    }
                    if sh.wheel_index(s) == w {
                        keep.push(sh, s);
                    } else {
                        sh.wheel_push(s);
                    }
                }
                s = next;
            }
            // Put back what stays in this slot: the kept entries, then the
            // unexamined rest if the budget ran out.
            keep.append_raw(sh, s);
            if keep.head != NIL {
                sh.at_mut(keep.head).tw_prev = HEAD_TAG | w as u32;
            }
            sh.wheel[w] = keep.head;
            if s != NIL || sh.cursor == now_tick {
                break;
            }
            sh.cursor += 1;
        }
        removed
    }

    /// Removes every entry for which `pred` holds (`-C`, deleting a service,
    /// flushing a deleted destination's connections), one shard at a time.
    /// Connections go first; a matching template that still controls
    /// connections which did not match is unhashed (no new connection will
    /// use it) and left to expire with them. Returns the entries removed.
    pub fn remove_where(&self, mut pred: impl FnMut(&Conn) -> bool) -> usize {
        let mut n = 0;
        for templates in [false, true] {
            for shard in self.shards.iter() {
                let mut d = Deferred::default();
                {
                    let mut sh = shard.lock();
                    for slot in 0..sh.used {
                        let c = *sh.at(slot);
                        if c.flags & flags::LIVE == 0 || c.is_template() != templates || !pred(&c) {
                            continue;
                        }
                        if templates && c.control > 0 {
                            if c.flags & flags::HASHED_IN != 0 {
                                let hc = self.client_hash(c.proto(), &c.caddr, c.cport);
                                sh.unlink_in(self.in_hash(hc, &c.key()), slot);
                            }
                        } else {
                            self.remove(&mut sh, slot, &mut d);
                            n += 1;
                        }
                    }
                }
                self.finish(d);
            }
        }
        n
    }

    /// Brings the expiry of every connection in TCP state `state` down to
    /// at most `max_ms` from `now` (a director under a SYN flood shortens
    /// the SYN_RECV entries it already holds). Returns the entries changed.
    /// One shard lock at a time, on the control thread.
    pub fn clamp_expiry(&self, now: u64, state: TcpState, max_ms: u64) -> usize {
        let limit = now.saturating_add(max_ms);
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut sh = shard.lock();
            for slot in 0..sh.used {
                let c = sh.at(slot);
                if c.flags & flags::LIVE == 0
                    || c.is_template()
                    || c.tcp_state() != state
                    || c.proto != Proto::Tcp as u8
                    || c.expires <= limit
                {
                    continue;
                }
                let c = sh.at_mut(slot);
                c.expires = limit;
                c.timeout_ms = max_ms.min(MAX_TIMEOUT_MS) as u32;
                sh.wheel_unlink(slot);
                sh.wheel_push(slot);
                n += 1;
            }
        }
        n
    }

    /// Visits every live entry (for `-Lnc`, sync and statistics) without
    /// stopping the data plane: entries are copied out in batches of at most
    /// `batch` per lock hold, and `f` runs with no lock held.
    pub fn for_each(&self, batch: usize, mut f: impl FnMut(ConnId, &Conn)) {
        let batch = batch.max(1);
        let mut buf: Vec<(ConnId, Conn)> = Vec::with_capacity(batch);
        for (si, shard) in self.shards.iter().enumerate() {
            let mut next = 0u32;
            loop {
                buf.clear();
                {
                    let sh = shard.lock();
                    while next < sh.used && buf.len() < batch {
                        let c = sh.at(next);
                        if c.flags & flags::LIVE != 0 {
                            buf.push((self.id(si, next), *c));
                        }
                        next += 1;
                    }
                    if buf.is_empty() && next >= sh.used {
                        break;
                    }
                }
                for (id, c) in &buf {
                    f(*id, c);
                }
            }
        }
    }

    /// Memory the table holds, in bytes: slab chunks, bucket arrays and
    /// wheels (not counting the allocator's own overhead).
    pub fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.chunks.len() * CHUNK * size_of::<Conn>()
                    + (s.in_heads.len() + s.out_heads.len() + s.wheel.len()) * 4
            })
            .sum::<usize>()
            + self.shards.len() * size_of::<CachePadded<Mutex<Shard>>>()
    }
}
