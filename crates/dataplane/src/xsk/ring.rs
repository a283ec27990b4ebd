//! The four single-producer single-consumer rings of an AF_XDP socket,
//! shared with the kernel through `mmap`.
//!
//! Protocol (kernel `net/xdp/xsk_queue.h`): the producer writes entries,
//! then publishes its index with a release store; the consumer reads the
//! producer index with an acquire load, reads the entries, then publishes
//! its own index with a release store. Indices are free-running `u32`s,
//! the slot is `index & mask`. Both indices are cached and the shared ones
//! re-read only when the cache says the ring is short (xdpilone, libxdp).

use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{self, Mmap};

/// Where the kernel put one ring's fields in its mapping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RingOffsets {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

impl From<libc::xdp_ring_offset> for RingOffsets {
    fn from(o: libc::xdp_ring_offset) -> Self {
        RingOffsets {
            producer: o.producer,
            consumer: o.consumer,
            desc: o.desc,
            flags: o.flags,
        }
    }
}

/// An entry type of a ring: `u64` addresses (fill, completion) or
/// `xdp_desc` (RX, TX).
///
/// # Safety
///
/// Implementors are plain `repr(C)` kernel UAPI types, valid for every bit
/// pattern, whose size is the ring's entry size.
pub(crate) unsafe trait Entry: Copy {}
// SAFETY: the fill and completion rings hold `__u64` addresses.
unsafe impl Entry for u64 {}
// SAFETY: the RX and TX rings hold `struct xdp_desc`.
unsafe impl Entry for libc::xdp_desc {}

/// One mapped ring. `cached_prod`/`cached_cons` are this side's copies of
/// the shared indices.
#[derive(Debug)]
pub(crate) struct Ring<T: Entry> {
    producer: *mut u32,
    consumer: *mut u32,
    flags: *mut u32,
    descs: *mut T,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
    // The mapping the pointers above point into, unmapped on drop.
    _map: Mmap,
    _entries: PhantomData<T>,
}

// SAFETY: the ring is owned by one `Socket`; the raw pointers point into
// `map`, which moves with it. The kernel side is not a Rust thread.
unsafe impl<T: Entry> Send for Ring<T> {}

impl<T: Entry> Ring<T> {
    /// Maps the ring of `size` entries (a power of two, as the kernel
    /// already checked when the ring was created) at `pgoff` of `fd`.
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        off: RingOffsets,
        size: u32,
        pgoff: u64,
    ) -> io::Result<Ring<T>> {
        debug_assert!(size.is_power_of_two());
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        let map = Mmap::ring(fd, len, pgoff)?;
        let fits = |o: u64, n: usize| (o as usize).checked_add(n).is_some_and(|e| e <= len);
        let aligned = |o: u64, a: usize| (o as usize).is_multiple_of(a);
        if !(fits(off.producer, 4)
            && fits(off.consumer, 4)
            && fits(off.flags, 4)
            && aligned(off.producer, 4)
            && aligned(off.consumer, 4)
            && aligned(off.flags, 4)
            && aligned(off.desc, std::mem::align_of::<T>()))
        {
            return Err(io::Error::other("AF_XDP ring offsets out of the mapping"));
        }
        let base = map.as_ptr();
        // SAFETY: the four offsets were just checked to lie in the mapping of
        // `len` bytes, so the pointers stay in bounds of one allocation.
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(off.producer as usize).cast::<u32>(),
                base.add(off.consumer as usize).cast::<u32>(),
                base.add(off.flags as usize).cast::<u32>(),
                base.add(off.desc as usize).cast::<T>(),
            )
        };
        let mut ring = Ring {
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
            _map: map,
            _entries: PhantomData,
        };
        ring.cached_prod = ring.producer().load(Ordering::Relaxed);
        ring.cached_cons = ring.consumer().load(Ordering::Relaxed);
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: in bounds and 4-aligned (checked in `map`), valid while
        // `self.map` lives, which outlives the returned borrow of `self`.
        // The kernel accesses the word only atomically (READ_ONCE /
        // smp_load_acquire / smp_store_release).
        unsafe { AtomicU32::from_ptr(self.producer) }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { AtomicU32::from_ptr(self.consumer) }
    }

    /// Whether the kernel asked for a wake-up (`XDP_RING_NEED_WAKEUP`).
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        let flags = unsafe { AtomicU32::from_ptr(self.flags) };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    // ---- producer side (fill, TX) ----

    /// Free slots, at least `want` if that many exist: the consumer index
    /// is re-read only when the cached value shows fewer.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.consumer().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes the `i`-th entry after the last submitted one.
    ///
    /// The caller got `i < self.free(..)` since the last `submit`.
    pub(crate) fn write(&mut self, i: u32, entry: T) {
        debug_assert!(i < self.size - self.cached_prod.wrapping_sub(self.cached_cons));
        let slot = (self.cached_prod.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot <= mask < size`, inside the descriptor array of the
        // mapping; the slot is free (between the producer and the consumer
        // index), so the kernel does not read it until `submit` publishes it.
        unsafe { self.descs.add(slot).write(entry) };
    }

    /// Publishes `n` written entries.
    pub(crate) fn submit(&mut self, n: u32) {
        self.cached_prod = self.cached_prod.wrapping_add(n);
        self.producer().store(self.cached_prod, Ordering::Release);
    }

    /// Entries published but not yet consumed by the kernel (TX in flight
    /// inside the ring).
    pub(crate) fn pending(&self) -> u32 {
        self.cached_prod
            .wrapping_sub(self.consumer().load(Ordering::Acquire))
    }

    // ---- consumer side (RX, completion) ----

    /// Entries ready to read, at most `want`: the producer index is
    /// re-read only when the cached value shows fewer.
    pub(crate) fn available(&mut self, want: u32) -> u32 {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail < want {
            self.cached_prod = self.producer().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        avail.min(want)
    }

    /// Reads the `i`-th entry after the last released one.
    ///
    /// The caller got `i < self.available(..)` since the last `release`.
    pub(crate) fn read(&self, i: u32) -> T {
        debug_assert!(i < self.cached_prod.wrapping_sub(self.cached_cons));
        let slot = (self.cached_cons.wrapping_add(i) & self.mask) as usize;
        // SAFETY: `slot < size`, inside the descriptor array; the entry was
        // published by the kernel (acquire load of the producer index in
        // `available`) and is not rewritten before `release` hands it back.
        unsafe { self.descs.add(slot).read() }
    }

    /// Hands `n` read entries back to the kernel.
    pub(crate) fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.consumer().store(self.cached_cons, Ordering::Release);
    }
}

/// The mapping offsets of the four rings of `fd` (`XDP_MMAP_OFFSETS`).
pub(crate) fn mmap_offsets(
    fd: BorrowedFd<'_>,
) -> io::Result<(RingOffsets, RingOffsets, RingOffsets, RingOffsets)> {
    let off: libc::xdp_mmap_offsets = sys::getsockopt(fd, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)?;
    Ok((off.rx.into(), off.tx.into(), off.fr.into(), off.cr.into()))
}
