//! AF_XDP sockets: the UMEM, its frames and the per-queue sockets, behind a
//! small safe API for the workers. This module holds the only `unsafe` code
//! of the project (system calls in `sys`, the shared rings in `ring`, and the
//! frame slices here); every block says why it is sound.
//!
//! # Model
//!
//! - A [`Umem`] is one `mmap`ed area cut into `frame_count` chunks of
//!   `frame_size` bytes (2048 or 4096). A chunk is always owned by exactly one
//!   party: the UMEM's free list, one [`Frame`] token held by the worker, or
//!   the kernel (fill, RX, TX or completion ring of one socket).
//! - A [`Frame`] is the worker's proof of ownership of one chunk: it is not
//!   `Clone`, it is made only by [`Socket::recv`] and [`Umem::alloc`], and it
//!   is given up by [`Socket::send`] (to the kernel) or [`Umem::release`]
//!   (to the free list). Holding `&mut Frame` is therefore exclusive access to
//!   the chunk's bytes, which [`Umem::frame`] turns into a [`FrameMut`] view.
//!   Forgetting a `Frame` only leaks its chunk.
//! - A [`Socket`] is bound to one `(interface, queue)`. The first socket of a
//!   UMEM registers it; later ones share it (`XDP_SHARED_UMEM`), each with its
//!   own fill and completion rings (kernel 5.10+), so one worker can receive on
//!   one interface and transmit the same frame, unchanged in memory, on another.
//!   Two sockets of one UMEM on the *same* `(interface, queue)` are not
//!   supported.
//!
//! # Headroom
//!
//! The kernel puts a received packet `headroom + 256` bytes into its chunk
//! (`XDP_PACKET_HEADROOM` = 256 plus [`UmemConfig::headroom`]). All of it is
//! available to [`FrameMut::push_front`], which moves the start of the packet
//! back without copying (an IP-in-IP header is 20 bytes: write the outer
//! header in front, move the Ethernet header). With 2048-byte frames and no
//! extra headroom a packet has 1792 bytes after it.
//!
//! # Why not xsk-rs
//!
//! xsk-rs 0.11 (evaluated for this module) cannot move a frame's data start:
//! its `FrameDesc::addr` is crate-private with no setter and its user headroom
//! is a separate segment, not contiguous with the packet, so a prepend would
//! mean copying the packet. Its frame accessors are also `unsafe fn`s that
//! would have to be wrapped the same way. The kernel ABI (`libc` has every
//! type) is small enough to use directly, as xdpilone does, and it drops the
//! libxdp C build. The XDP program is our own (`crate::xdp`); nothing here
//! loads one.
//!
//! # A worker loop
//!
//! ```no_run
//! use xvs_dataplane::xsk::{Frame, Socket, SocketConfig, Umem, UmemConfig};
//!
//! # fn main() -> Result<(), xvs_dataplane::xsk::XskError> {
//! let mut umem = Umem::new(&UmemConfig::default())?;
//! let mut sock = Socket::new(&mut umem, "eth0", 0, &SocketConfig::default())?;
//! // steering.register_socket(sock.ifindex(), 0, &sock)?;  (crate::xdp)
//! let mut rx: Vec<Frame> = Vec::with_capacity(64);
//! let mut tx: Vec<Frame> = Vec::with_capacity(64);
//! loop {
//!     sock.complete(&mut umem); // finished TX -> free list
//!     sock.refill(&mut umem)?; // free list -> fill ring
//!     if sock.recv(&mut rx) == 0 {
//!         sock.poll(1)?;
//!         continue;
//!     }
//!     for mut f in rx.drain(..) {
//!         let mut view = umem.frame(&mut f);
//!         if view.data().len() >= 14 {
//!             view.data_mut()[..12].rotate_left(6); // swap the MACs
//!             tx.push(f);
//!         } else {
//!             umem.release(f); // drop: back to the free list
//!         }
//!     }
//!     sock.send(&mut tx)?; // submits and kicks; leftovers stay in `tx`
//!     for f in tx.drain(..) {
//!         umem.release(f); // TX ring full: drop them
//!     }
//! }
//! # }
//! ```

mod ring;
mod sys;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::pipeline::Frame as PipeFrame;
use ring::{Ring, mmap_offsets};
use sys::Mmap;

/// Bytes the kernel reserves in front of every received packet
/// (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// Errors of the AF_XDP layer.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A configuration value the kernel would refuse.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(&'static str),
    /// A system call failed; `op` names it.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Every UMEM id was used (2^32 UMEMs in one process).
    #[error("UMEM ids exhausted")]
    IdsExhausted,
}

fn sys_err(op: &'static str) -> impl FnOnce(io::Error) -> XskError {
    move |source| XskError::Sys { op, source }
}

/// Size and shape of a [`Umem`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UmemConfig {
    /// Bytes per frame (chunk): a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Number of frames. Size it for every ring of every socket that shares
    /// the UMEM, plus the frames the worker holds: `Σ (fill + tx) + batch`.
    pub frame_count: u32,
    /// Extra headroom registered with the kernel, in front of the 256 bytes
    /// of `XDP_PACKET_HEADROOM`; 0 is enough for encapsulation.
    pub headroom: u32,
}

impl Default for UmemConfig {
    /// 4096 frames of 2048 bytes (8 MiB), no extra headroom.
    fn default() -> Self {
        UmemConfig {
            frame_size: 2048,
            frame_count: 4096,
            headroom: 0,
        }
    }
}

static NEXT_UMEM_ID: AtomicU32 = AtomicU32::new(1);

/// A UMEM: the frame memory shared by the kernel and the sockets bound to it,
/// and the free list of the frames nobody uses.
///
/// Not `Sync`: one worker owns it (and all its sockets).
pub struct Umem {
    id: u32,
    area: Mmap,
    frame_size: u32,
    frame_count: u32,
    headroom: u32,
    /// Chunk base addresses (offsets in the area) of the free frames.
    free: Vec<u64>,
    /// The socket that registered the area, once the first [`Socket`] bound
    /// it: later sockets name it in `XDP_SHARED_UMEM` binds. A duplicate of
    /// the first socket's descriptor, so that socket stays bound (and in the
    /// XDP socket map) until both it and the UMEM are dropped.
    owner: Option<OwnedFd>,
    /// Whether the owner was bound with `XDP_USE_NEED_WAKEUP` (shared
    /// sockets inherit it).
    need_wakeup: bool,
}

impl fmt::Debug for Umem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Umem")
            .field("id", &self.id)
            .field("frame_size", &self.frame_size)
            .field("frame_count", &self.frame_count)
            .field("headroom", &self.headroom)
            .field("free", &self.free.len())
            .field("registered", &self.owner.is_some())
            .finish()
    }
}

impl Umem {
    /// Maps the area (pre-faulted) and puts every frame on the free list.
    /// Registration with the kernel happens with the first [`Socket`].
    ///
    /// The area counts against `RLIMIT_MEMLOCK` when it is registered unless
    /// the process has `CAP_IPC_LOCK` (root has).
    pub fn new(cfg: &UmemConfig) -> Result<Umem, XskError> {
        let page = page_size();
        if !cfg.frame_size.is_power_of_two()
            || cfg.frame_size < 2048
            || cfg.frame_size as usize > page
        {
            return Err(XskError::Config(
                "frame_size must be a power of two from 2048 to the page size",
            ));
        }
        if cfg.frame_count == 0 {
            return Err(XskError::Config("frame_count must be at least 1"));
        }
        if cfg.headroom + XDP_PACKET_HEADROOM + 128 > cfg.frame_size {
            return Err(XskError::Config(
                "headroom leaves less than 128 bytes of packet room",
            ));
        }
        let len = cfg.frame_count as usize * cfg.frame_size as usize;
        let id = NEXT_UMEM_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| i.checked_add(1))
            .map_err(|_| XskError::IdsExhausted)?;
        let area = Mmap::anonymous(len).map_err(sys_err("mmap UMEM area"))?;
        let free = (0..cfg.frame_count as u64)
            .rev()
            .map(|i| i * cfg.frame_size as u64)
            .collect();
        Ok(Umem {
            id,
            area,
            frame_size: cfg.frame_size,
            frame_count: cfg.frame_count,
            headroom: cfg.headroom,
            free,
            owner: None,
            need_wakeup: false,
        })
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Offset of a received packet in its frame: `headroom + 256`.
    pub fn rx_offset(&self) -> u32 {
        self.headroom + XDP_PACKET_HEADROOM
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// A free frame, empty, its data starting at [`Umem::rx_offset`] (for
    /// packets built from scratch). Its bytes are whatever the frame held
    /// last: write every byte you send.
    pub fn alloc(&mut self) -> Option<Frame> {
        let chunk = self.free.pop()?;
        Some(Frame {
            addr: chunk + self.rx_offset() as u64,
            len: 0,
            umem: self.id,
        })
    }

    /// Gives a frame back to the free list (the "drop" verdict).
    ///
    /// # Panics
    ///
    /// If `frame` belongs to another UMEM.
    pub fn release(&mut self, frame: Frame) {
        assert_eq!(frame.umem, self.id, "frame of another UMEM");
        self.free.push(self.chunk_of(frame.addr));
    }

    /// Starts loading the first cache line of `frame`'s packet into the
    /// cache, without waiting for it. The worker calls it for a whole
    /// received batch before handling the first frame, so that the batch's
    /// cache misses overlap instead of each frame's parse waiting for its
    /// own: the kernel wrote the packet (copy mode) or the NIC did (DMA)
    /// long before, and under load the line is no longer cached. A hint: it
    /// reads nothing and cannot fault. A no-op off x86-64.
    #[inline]
    pub fn prefetch(&self, frame: &Frame) {
        #[cfg(target_arch = "x86_64")]
        if (frame.addr as usize) < self.area.len() {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch never faults and changes no memory; the
            // address is inside the area anyway (checked above).
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(
                    self.area.as_ptr().add(frame.addr as usize).cast::<i8>(),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = frame;
    }

    /// Read access to a frame's packet bytes.
    ///
    /// # Panics
    ///
    /// If `frame` belongs to another UMEM.
    pub fn data<'a>(&'a self, frame: &'a Frame) -> &'a [u8] {
        assert_eq!(frame.umem, self.id, "frame of another UMEM");
        let (chunk, off) = self.split(frame.addr);
        &self.chunk_slice(chunk)[off..off + frame.len as usize]
    }

    /// Read-write view of a frame: its packet bytes and the room around them.
    ///
    /// # Panics
    ///
    /// If `frame` belongs to another UMEM.
    pub fn frame<'a>(&'a self, frame: &'a mut Frame) -> FrameMut<'a> {
        assert_eq!(frame.umem, self.id, "frame of another UMEM");
        let (chunk, off) = self.split(frame.addr);
        let len = self.frame_size as usize;
        assert!(chunk + len <= self.area.len());
        // SAFETY: the chunk `[chunk, chunk + frame_size)` lies in the area
        // (asserted above; the area is `frame_count * frame_size` bytes and
        // `chunk` a multiple of `frame_size`). `frame` is a genuine token of
        // this UMEM (id checked), so the chunk is owned by the holder of
        // `frame` and by nobody else — not the kernel (it gave the chunk up
        // through the RX or completion ring, or it never had it), not
        // another `Frame` (tokens are unique and not `Clone`). The `&mut
        // Frame` borrow held by the view for `'a` makes the slice exclusive,
        // and `'a` also borrows `self`, so the area outlives it.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.area.as_ptr().add(chunk), len) };
        FrameMut {
            buf,
            off,
            frame,
            default_off: self.rx_offset() as usize,
        }
    }

    /// The area's bytes of one chunk, read-only (see [`Umem::frame`] for why
    /// this is sound; here a shared borrow of the token suffices).
    fn chunk_slice(&self, chunk: usize) -> &[u8] {
        let len = self.frame_size as usize;
        assert!(chunk + len <= self.area.len());
        // SAFETY: in bounds (asserted); only called with the chunk of a
        // genuine token borrowed for the returned lifetime (`data`), so
        // no `&mut` to it exists and the kernel does not own it.
        unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(chunk), len) }
    }

    fn chunk_of(&self, addr: u64) -> u64 {
        addr & !(self.frame_size as u64 - 1)
    }

    fn split(&self, addr: u64) -> (usize, usize) {
        let chunk = self.chunk_of(addr);
        (chunk as usize, (addr - chunk) as usize)
    }
}

// SAFETY: a `Umem` owns its mapping and free list; nothing in it is tied to
// a thread (the kernel side is not a Rust thread).
unsafe impl Send for Umem {}

/// One packet buffer owned by the worker: a chunk of a [`Umem`], where its
/// packet starts and how long it is.
///
/// Made by [`Socket::recv`] and [`Umem::alloc`]; ended by [`Socket::send`]
/// and [`Umem::release`]. Dropping it leaks the chunk until the UMEM goes.
#[derive(Debug)]
pub struct Frame {
    /// Offset of the first packet byte in the UMEM area.
    addr: u64,
    len: u32,
    umem: u32,
}

impl Frame {
    /// Packet length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the packet is empty (a fresh [`Umem::alloc`] frame).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the packet in the UMEM area (for logs and tests).
    pub fn addr(&self) -> u64 {
        self.addr
    }
}

/// Not enough headroom or tailroom for a resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("frame has no room for this resize")]
pub struct NoRoom;

/// Read-write view of one frame: the packet and the room in front of it
/// (headroom) and behind it (tailroom), all inside its chunk.
#[derive(Debug)]
pub struct FrameMut<'a> {
    /// The whole chunk.
    buf: &'a mut [u8],
    /// Start of the packet in `buf`.
    off: usize,
    frame: &'a mut Frame,
    /// Where the kernel puts received packets ([`Umem::rx_offset`]).
    default_off: usize,
}

impl FrameMut<'_> {
    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.frame.len as usize]
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.off..self.off + self.frame.len as usize]
    }

    /// Packet length.
    #[inline]
    pub fn len(&self) -> usize {
        self.frame.len as usize
    }

    /// Whether the packet is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frame.len == 0
    }

    /// Bytes available in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.off
    }

    /// Bytes available behind the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.off - self.frame.len as usize
    }

    /// Grows the packet by `n` bytes at the front, without moving it, and
    /// returns the new packet bytes (the `n` new ones first; they hold
    /// whatever the frame held before).
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        if n > self.off {
            return Err(NoRoom);
        }
        self.off -= n;
        self.frame.addr -= n as u64;
        self.frame.len += n as u32;
        Ok(self.data_mut())
    }

    /// Removes `n` bytes from the front of the packet (decapsulation).
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> Result<(), NoRoom> {
        if n > self.frame.len as usize {
            return Err(NoRoom);
        }
        self.off += n;
        self.frame.addr += n as u64;
        self.frame.len -= n as u32;
        Ok(())
    }

    /// Sets the packet length (truncate, or grow into the tailroom: the new
    /// bytes hold whatever the frame held before).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), NoRoom> {
        if len > self.buf.len() - self.off {
            return Err(NoRoom);
        }
        self.frame.len = len as u32;
        Ok(())
    }

    /// Runs `f` on the frame as the pipeline sees it ([`PipeFrame`]: the
    /// whole chunk, packet start and length), then takes over where `f`
    /// left the packet (a pushed tunnel header, a shortened reply).
    #[inline]
    pub fn with_pipeline<R>(&mut self, f: impl FnOnce(&mut PipeFrame<'_>) -> R) -> R {
        let chunk = self.frame.addr - self.off as u64;
        let mut pf = PipeFrame::new(self.buf, self.off, self.frame.len as usize);
        let r = f(&mut pf);
        // `PipeFrame` keeps `start + len` inside the chunk.
        let (start, len) = (pf.start(), pf.len());
        self.off = start;
        self.frame.addr = chunk + start as u64;
        self.frame.len = len as u32;
        r
    }

    /// Replaces the packet by a copy of `bytes` (for packets built from
    /// scratch, e.g. in a frame of [`Umem::alloc`]): it starts where received
    /// packets start ([`Umem::rx_offset`]) when it fits behind that, else as
    /// far forward as it fits.
    pub fn write_packet(&mut self, bytes: &[u8]) -> Result<(), NoRoom> {
        if bytes.len() > self.buf.len() {
            return Err(NoRoom);
        }
        let off = self.default_off.min(self.buf.len() - bytes.len());
        let chunk = self.frame.addr - self.off as u64;
        self.buf[off..off + bytes.len()].copy_from_slice(bytes);
        self.off = off;
        self.frame.addr = chunk + off as u64;
        self.frame.len = bytes.len() as u32;
        Ok(())
    }
}

/// How to bind a socket (ignored by sockets that share an already bound UMEM:
/// they inherit the first socket's mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy when the driver supports it, else copy.
    #[default]
    Auto,
    /// Copy mode (`XDP_COPY`): works on every interface, veth included.
    Copy,
    /// Zero-copy (`XDP_ZEROCOPY`), or fail.
    ZeroCopy,
}

/// Ring sizes and bind options of a [`Socket`]. Sizes are powers of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// RX ring entries.
    pub rx_size: u32,
    /// TX ring entries.
    pub tx_size: u32,
    /// Fill ring entries.
    pub fill_size: u32,
    /// Completion ring entries (keep it >= `tx_size`: copy-mode TX stops
    /// when it is full).
    pub comp_size: u32,
    /// Copy or zero-copy.
    pub mode: BindMode,
    /// `XDP_USE_NEED_WAKEUP`: the kernel says when it needs a `sendto` or a
    /// `recvfrom`; without it every `send` kicks.
    pub need_wakeup: bool,
}

impl Default for SocketConfig {
    /// 2048 entries per ring, [`BindMode::Auto`], need-wakeup on.
    fn default() -> Self {
        SocketConfig {
            rx_size: 2048,
            tx_size: 2048,
            fill_size: 2048,
            comp_size: 2048,
            mode: BindMode::Auto,
            need_wakeup: true,
        }
    }
}

/// The kernel's counters of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for other reasons than the ones below.
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid_descs: u64,
    /// Dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the fill ring was empty when a packet arrived.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

/// An AF_XDP socket bound to one `(interface, queue)`, with its four rings.
///
/// Put it into the XDP program's socket map (`crate::xdp`) to receive. The
/// first socket of a UMEM stays bound in the kernel until the UMEM is
/// dropped too (the UMEM keeps its descriptor for later shared binds): to
/// rebind that queue, drop the sockets and the UMEM and start again.
pub struct Socket {
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    comp: Ring<u64>,
    fd: OwnedFd,
    umem: u32,
    frame_mask: u64,
    area_len: u64,
    ifindex: u32,
    queue: u32,
    zerocopy: bool,
    need_wakeup: bool,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("fd", &self.fd.as_raw_fd())
            .field("umem", &self.umem)
            .field("ifindex", &self.ifindex)
            .field("queue", &self.queue)
            .field("zerocopy", &self.zerocopy)
            .finish()
    }
}

impl Socket {
    /// Creates a socket on `(ifname, queue)` of the caller's network
    /// namespace, registering `umem` if this is its first socket, else
    /// sharing it.
    pub fn new(
        umem: &mut Umem,
        ifname: &str,
        queue: u32,
        cfg: &SocketConfig,
    ) -> Result<Socket, XskError> {
        let ifindex = sys::if_nametoindex(ifname).map_err(sys_err("if_nametoindex"))?;
        Socket::with_ifindex(umem, ifindex, queue, cfg)
    }

    /// As [`Socket::new`], by interface index.
    pub fn with_ifindex(
        umem: &mut Umem,
        ifindex: u32,
        queue: u32,
        cfg: &SocketConfig,
    ) -> Result<Socket, XskError> {
        for size in [cfg.rx_size, cfg.tx_size, cfg.fill_size, cfg.comp_size] {
            if !size.is_power_of_two() {
                return Err(XskError::Config("ring sizes must be powers of two"));
            }
        }
        let fd = sys::xsk_socket().map_err(sys_err("socket(AF_XDP)"))?;
        let first = umem.owner.is_none();
        if first {
            let reg = libc::xdp_umem_reg {
                addr: umem.area.as_ptr() as u64,
                len: umem.area.len() as u64,
                chunk_size: umem.frame_size,
                headroom: umem.headroom,
                flags: 0,
                tx_metadata_len: 0,
            };
            sys::setsockopt(fd.as_fd(), libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
                .map_err(sys_err("setsockopt(XDP_UMEM_REG)"))?;
        }
        let opt = |name, size: u32, op| {
            sys::setsockopt(fd.as_fd(), libc::SOL_XDP, name, &size).map_err(sys_err(op))
        };
        opt(
            libc::XDP_UMEM_FILL_RING,
            cfg.fill_size,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        opt(
            libc::XDP_UMEM_COMPLETION_RING,
            cfg.comp_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        opt(libc::XDP_RX_RING, cfg.rx_size, "setsockopt(XDP_RX_RING)")?;
        opt(libc::XDP_TX_RING, cfg.tx_size, "setsockopt(XDP_TX_RING)")?;

        let (rx_off, tx_off, fr_off, cr_off) =
            mmap_offsets(fd.as_fd()).map_err(sys_err("getsockopt(XDP_MMAP_OFFSETS)"))?;
        let rx = Ring::map(
            fd.as_fd(),
            rx_off,
            cfg.rx_size,
            libc::XDP_PGOFF_RX_RING as u64,
        )
        .map_err(sys_err("mmap RX ring"))?;
        let tx = Ring::map(
            fd.as_fd(),
            tx_off,
            cfg.tx_size,
            libc::XDP_PGOFF_TX_RING as u64,
        )
        .map_err(sys_err("mmap TX ring"))?;
        let fill = Ring::map(
            fd.as_fd(),
            fr_off,
            cfg.fill_size,
            libc::XDP_UMEM_PGOFF_FILL_RING,
        )
        .map_err(sys_err("mmap fill ring"))?;
        let comp = Ring::map(
            fd.as_fd(),
            cr_off,
            cfg.comp_size,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
        )
        .map_err(sys_err("mmap completion ring"))?;

        match &umem.owner {
            None => {
                let mut flags = match cfg.mode {
                    BindMode::Auto => 0,
                    BindMode::Copy => libc::XDP_COPY,
                    BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
                };
                if cfg.need_wakeup {
                    flags |= libc::XDP_USE_NEED_WAKEUP;
                }
                sys::bind_xsk(fd.as_fd(), ifindex, queue, flags, None)
                    .map_err(sys_err("bind(AF_XDP)"))?;
            }
            Some(owner) => {
                sys::bind_xsk(
                    fd.as_fd(),
                    ifindex,
                    queue,
                    libc::XDP_SHARED_UMEM,
                    Some(owner.as_fd()),
                )
                .map_err(sys_err("bind(AF_XDP, XDP_SHARED_UMEM)"))?;
            }
        }
        let opts: libc::xdp_options = sys::getsockopt(fd.as_fd(), libc::SOL_XDP, libc::XDP_OPTIONS)
            .map_err(sys_err("getsockopt(XDP_OPTIONS)"))?;
        if first {
            let owner = fd.try_clone().map_err(sys_err("dup AF_XDP socket"))?;
            umem.owner = Some(owner);
            umem.need_wakeup = cfg.need_wakeup;
        }
        Ok(Socket {
            rx,
            tx,
            fill,
            comp,
            fd,
            umem: umem.id,
            frame_mask: umem.frame_size as u64 - 1,
            area_len: umem.area.len() as u64,
            ifindex,
            queue,
            zerocopy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
            // Shared sockets inherit the owner's setting.
            need_wakeup: umem.need_wakeup,
        })
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the kernel bound it in zero-copy mode (never on veth).
    pub fn is_zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// Moves free frames of `umem` into the fill ring (as many as fit), and
    /// wakes the driver up if it asked. Returns how many were given.
    ///
    /// With several sockets on one UMEM, the first to refill takes what it
    /// can: size `frame_count` for all the fill rings (see [`UmemConfig`]).
    ///
    /// # Panics
    ///
    /// If `umem` is not the socket's UMEM.
    pub fn refill(&mut self, umem: &mut Umem) -> Result<usize, XskError> {
        assert_eq!(umem.id, self.umem, "socket used with another UMEM");
        let n = self
            .fill
            .free(umem.free.len() as u32)
            .min(umem.free.len() as u32);
        for i in 0..n {
            // `n <= free.len()`, so the pop succeeds.
            let chunk = umem.free.pop().unwrap_or_default();
            self.fill.write(i, chunk);
        }
        if n > 0 {
            self.fill.submit(n);
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            sys::kick_rx(self.fd.as_fd()).map_err(sys_err("recvfrom(AF_XDP) wake-up"))?;
        }
        Ok(n as usize)
    }

    /// Receives up to `out.capacity() - out.len()` frames, appended to
    /// `out` (never reallocates it). Returns how many.
    pub fn recv(&mut self, out: &mut Vec<Frame>) -> usize {
        let room = (out.capacity() - out.len()).min(u32::MAX as usize) as u32;
        let n = self.rx.available(room);
        let mut got = 0;
        for i in 0..n {
            let d = self.rx.read(i);
            if d.addr < self.area_len
                && (d.addr & self.frame_mask) + d.len as u64 <= self.frame_mask + 1
            {
                out.push(Frame {
                    addr: d.addr,
                    len: d.len,
                    umem: self.umem,
                });
                got += 1;
            }
            // A descriptor outside the UMEM cannot come from a kernel that
            // follows the ring protocol; it is skipped, not trusted.
        }
        if n > 0 {
            self.rx.release(n);
        }
        got
    }

    /// Submits frames from the front of `frames` to the TX ring (as many as
    /// fit; the rest stay in `frames`) and kicks the kernel. The frames may
    /// come from any socket of the same UMEM. Returns how many were queued.
    ///
    /// Copy-mode TX (veth) only moves on `sendto`, at most a kernel budget
    /// (32 by default) per call: the kick is repeated while the kernel asks
    /// for more and consumes, a few times at most.
    ///
    /// # Panics
    ///
    /// If a frame belongs to another UMEM.
    pub fn send(&mut self, frames: &mut Vec<Frame>) -> Result<usize, XskError> {
        let want = frames.len().min(u32::MAX as usize) as u32;
        let n = self.tx.free(want).min(want);
        for (i, f) in frames.iter().take(n as usize).enumerate() {
            assert_eq!(f.umem, self.umem, "frame of another UMEM");
            self.tx.write(
                i as u32,
                libc::xdp_desc {
                    addr: f.addr,
                    len: f.len,
                    options: 0,
                },
            );
        }
        if n > 0 {
            self.tx.submit(n);
            frames.drain(..n as usize);
        }
        self.kick()?;
        Ok(n as usize)
    }

    /// Kicks TX: always in copy mode (its TX only runs in `sendto`), in
    /// zero-copy mode when the driver asked (or always without need-wakeup);
    /// again while the kernel consumes and asks for more (bounded).
    pub fn kick(&mut self) -> Result<(), XskError> {
        if self.zerocopy && self.need_wakeup && !self.tx.needs_wakeup() {
            return Ok(());
        }
        let mut pending = self.tx.pending();
        // One sendto moves up to the kernel's budget (32); allow for the
        // whole ring plus one.
        for _ in 0..=(self.tx.size() / 32) {
            if pending == 0 {
                break;
            }
            let done = sys::kick_tx(self.fd.as_fd()).map_err(sys_err("sendto(AF_XDP) kick"))?;
            let now = self.tx.pending();
            if done || now == pending {
                break;
            }
            pending = now;
        }
        Ok(())
    }

    /// Moves finished TX frames from the completion ring to `umem`'s free
    /// list. Returns how many.
    ///
    /// # Panics
    ///
    /// If `umem` is not the socket's UMEM.
    pub fn complete(&mut self, umem: &mut Umem) -> usize {
        assert_eq!(umem.id, self.umem, "socket used with another UMEM");
        let n = self.comp.available(self.comp.size());
        for i in 0..n {
            let addr = self.comp.read(i);
            if addr < self.area_len {
                umem.free.push(addr & !self.frame_mask);
            }
        }
        if n > 0 {
            self.comp.release(n);
        }
        n as usize
    }

    /// Waits up to `timeout_ms` (-1: forever) for received frames.
    pub fn poll(&self, timeout_ms: i32) -> Result<bool, XskError> {
        sys::poll(self.fd.as_fd(), libc::POLLIN, timeout_ms).map_err(sys_err("poll(AF_XDP)"))
    }

    /// Waits up to `timeout_ms` (-1: forever) until one of `sockets` has
    /// received frames. `Ok(false)` on timeout or interruption.
    pub fn poll_any(sockets: &[Socket], timeout_ms: i32) -> Result<bool, XskError> {
        let fds: Vec<_> = sockets.iter().map(|s| s.fd.as_fd()).collect();
        sys::poll_many(&fds, libc::POLLIN, timeout_ms).map_err(sys_err("poll(AF_XDP)"))
    }

    /// The kernel's counters for this socket.
    pub fn stats(&self) -> Result<XskStats, XskError> {
        let s: libc::xdp_statistics =
            sys::getsockopt(self.fd.as_fd(), libc::SOL_XDP, libc::XDP_STATISTICS)
                .map_err(sys_err("getsockopt(XDP_STATISTICS)"))?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }
}

impl AsFd for Socket {
    /// The socket's descriptor, for the XDP program's socket map.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Moves the calling thread into a network namespace (`ns`: an open
/// `/var/run/netns/NAME` or `/proc/PID/ns/net`). Sockets, interface names and
/// XDP attachments then resolve in that namespace; sockets made before keep
/// theirs. Used by the integration tests and for `xvsd --netns`.
pub fn enter_netns(ns: impl AsFd) -> io::Result<()> {
    sys::setns_net(ns.as_fd())
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> io::Result<u32> {
    sys::if_nametoindex(name)
}

/// Detaches a netlink-attached XDP program (of `ip link set ... xdp`, or
/// left behind by a tool) from `ifindex` in `mode_flags`
/// (`XDP_FLAGS_SKB_MODE` = 2, `XDP_FLAGS_DRV_MODE` = 4). Crate-internal: the
/// public entry point is `crate::xdp::detach_ifindex`.
pub(crate) fn netlink_xdp_detach(ifindex: u32, mode_flags: u32) -> io::Result<()> {
    sys::netlink_xdp_detach(ifindex, mode_flags)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umem_config_is_checked() {
        let bad = |frame_size, frame_count, headroom| {
            Umem::new(&UmemConfig {
                frame_size,
                frame_count,
                headroom,
            })
            .is_err()
        };
        assert!(bad(3000, 16, 0));
        assert!(bad(1024, 16, 0));
        assert!(bad(2048, 0, 0));
        assert!(bad(2048, 16, 2048 - 256 - 64));
        assert!(!bad(2048, 16, 0));
        assert!(!bad(4096, 16, 256));
    }

    #[test]
    fn alloc_release_round_trip() {
        let mut umem = Umem::new(&UmemConfig {
            frame_count: 4,
            ..UmemConfig::default()
        })
        .unwrap();
        let frames: Vec<Frame> = (0..4).map(|_| umem.alloc().unwrap()).collect();
        assert!(umem.alloc().is_none());
        let mut addrs: Vec<u64> = frames.iter().map(|f| f.addr() - 256).collect();
        addrs.sort_unstable();
        assert_eq!(addrs, [0, 2048, 4096, 6144]);
        for f in frames {
            umem.release(f);
        }
        assert_eq!(umem.free_frames(), 4);
    }

    #[test]
    fn push_pull_and_len_stay_in_the_frame() {
        let mut umem = Umem::new(&UmemConfig {
            frame_count: 2,
            headroom: 64,
            ..UmemConfig::default()
        })
        .unwrap();
        let mut f = umem.alloc().unwrap();
        {
            let mut v = umem.frame(&mut f);
            assert_eq!(v.headroom(), 320);
            assert_eq!(v.tailroom(), 2048 - 320);
            v.set_len(100).unwrap();
            v.data_mut().fill(7);
            assert_eq!(v.set_len(2048 - 320 + 1), Err(NoRoom));
            let d = v.push_front(20).unwrap();
            assert_eq!(d.len(), 120);
            d[..20].fill(1);
            assert_eq!(v.headroom(), 300);
            assert_eq!(v.data()[19..21], [1, 7]);
            assert_eq!(v.push_front(301), Err(NoRoom));
            v.push_front(300).unwrap();
            assert_eq!(v.headroom(), 0);
            assert_eq!(v.len(), 420);
            v.pull_front(320).unwrap();
            assert_eq!(v.len(), 100);
            assert_eq!(v.pull_front(101), Err(NoRoom));
            assert!(v.data().iter().all(|&b| b == 7));
        }
        assert_eq!(f.len(), 100);
        assert_eq!(umem.data(&f), &[7u8; 100][..]);
        // The frame's chunk is unchanged by the moves.
        assert_eq!(f.addr() & !2047, (f.addr() - 320) & !2047);
        {
            let mut v = umem.frame(&mut f);
            v.write_packet(&[9; 60]).unwrap();
            assert_eq!((v.headroom(), v.len()), (320, 60));
            v.write_packet(&[5; 2000]).unwrap();
            assert_eq!((v.headroom(), v.len()), (48, 2000));
            assert_eq!(v.write_packet(&[5; 2049]), Err(NoRoom));
        }
        umem.release(f);
    }

    #[test]
    #[should_panic(expected = "frame of another UMEM")]
    fn foreign_frames_are_refused() {
        let mut a = Umem::new(&UmemConfig {
            frame_count: 1,
            ..UmemConfig::default()
        })
        .unwrap();
        let b = Umem::new(&UmemConfig {
            frame_count: 1,
            ..UmemConfig::default()
        })
        .unwrap();
        let mut f = a.alloc().unwrap();
        let _ = b.frame(&mut f);
    }
}
