//! The system calls behind the AF_XDP sockets and the XDP loader: socket
//! options, `mmap`, `bind`, the TX/fill wake-ups, `poll`, `setns` and one
//! rtnetlink request. Each function checks its own arguments, so callers
//! stay in safe code; the `unsafe` blocks are the FFI calls themselves.

use std::ffi::CString;
use std::io;
use std::mem::{self, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

/// A private or shared memory mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    /// Usable bytes from `ptr`.
    len: usize,
    /// Bytes mapped from `ptr` (at least `len`), unmapped on drop.
    mapped: usize,
}

// SAFETY: a mapping is plain memory owned by this value; moving the owner
// to another thread moves nothing but the pointer.
unsafe impl Send for Mmap {}

/// Transparent huge page size on x86-64 and arm64 (4 KiB base pages).
const HUGE: usize = 2 << 20;

impl Mmap {
    /// Anonymous private memory of `len` bytes (a UMEM area), pre-faulted,
    /// on transparent huge pages where the kernel gives them: the area is
    /// aligned to 2 MiB and `madvise(MADV_HUGEPAGE)`d (THP in `madvise`
    /// mode, the common default, backs only such areas). A worker touches
    /// a different 2 KiB frame for every packet: with 4 KiB pages an 8 MiB
    /// area spans 2048 TLB entries, more than a core's TLB holds, so each
    /// packet's first touch paid a page walk (dear under nested paging).
    pub(crate) fn anonymous(len: usize) -> io::Result<Mmap> {
        let want = len.max(1).div_ceil(HUGE) * HUGE;
        let reserve = want + HUGE;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched and
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = p as usize;
        let start = base.next_multiple_of(HUGE);
        let head = start - base;
        let tail = reserve - head - want;
        // SAFETY: both ranges lie inside the mapping just made (head before
        // the aligned start, tail after its `want` bytes), which nothing
        // else refers to yet; unmapping them only trims it.
        unsafe {
            if head > 0 {
                libc::munmap(p, head);
            }
            if tail > 0 {
                libc::munmap((start + want) as *mut libc::c_void, tail);
            }
        }
        let start_ptr = start as *mut u8;
        // SAFETY: advice on the aligned mapping we own; an error (THP off,
        // or an old kernel) leaves ordinary pages, which is fine.
        unsafe { libc::madvise(start_ptr.cast(), want, libc::MADV_HUGEPAGE) };
        // Pre-fault (as MAP_POPULATE did, but after the advice, so that the
        // faults take huge pages).
        // SAFETY: `start..start + want` is our private, writable mapping.
        unsafe { ptr::write_bytes(start_ptr, 0, want) };
        let ptr = NonNull::new(start_ptr).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Mmap {
            ptr,
            len,
            mapped: want,
        })
    }

    /// The ring of an AF_XDP socket at page offset `pgoff`, `len` bytes.
    pub(crate) fn ring(fd: BorrowedFd<'_>, len: usize, pgoff: u64) -> io::Result<Mmap> {
        // SAFETY: maps a kernel object of `fd`; the kernel checks `pgoff` and
        // `len` against the ring it set up, and the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff as libc::off_t,
            )
        };
        Mmap::checked(p, len)
    }

    fn checked(p: *mut libc::c_void, len: usize) -> io::Result<Mmap> {
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Mmap {
            ptr,
            len,
            mapped: len,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and
        // nobody else unmaps; every reference into it borrows its owner,
        // so none outlives this drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new `AF_XDP` socket.
pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the result is checked.
    let fd = cvt(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marker for the plain C structs passed to socket options by value.
///
/// # Safety
///
/// Implementors are `repr(C)` structs of integers with no padding that
/// matters to the kernel, valid for every bit pattern (all zeroes included).
pub(crate) unsafe trait Plain: Copy {}
// SAFETY: integers.
unsafe impl Plain for u32 {}
// SAFETY: kernel UAPI struct of integers.
unsafe impl Plain for libc::xdp_umem_reg {}
// SAFETY: kernel UAPI struct of integers.
unsafe impl Plain for libc::xdp_mmap_offsets {}
// SAFETY: kernel UAPI struct of integers.
unsafe impl Plain for libc::xdp_statistics {}
// SAFETY: kernel UAPI struct of integers.
unsafe impl Plain for libc::xdp_options {}

pub(crate) fn setsockopt<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` for `size_of::<T>()` bytes, which is
    // the length passed; the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

pub(crate) fn getsockopt<T: Plain>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which has
    // room for them.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: zero-initialised, and `T: Plain` is valid for any bytes the
    // kernel wrote over the zeroes (it may write fewer for older layouts).
    Ok(unsafe { value.assume_init() })
}

/// `bind(2)` of an AF_XDP socket to `(ifindex, queue)`.
pub(crate) fn bind_xsk(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_umem_fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_umem_fd.map_or(0, |f| f.as_raw_fd() as u32),
    };
    // SAFETY: `addr` is a valid `sockaddr_xdp` of the length passed.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_xdp).cast(),
            mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Whether an errno returned by a wake-up only means "try again later".
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR)
    )
}

/// Kicks TX: `sendto(fd, NULL, 0, MSG_DONTWAIT)`. `Ok(false)` when the
/// kernel asked to be kicked again (`EAGAIN`, `EBUSY`, `ENOBUFS`, ...).
pub(crate) fn kick_tx(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: a zero-length send with no buffer and no address; the kernel
    // reads nothing from user memory.
    let r = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            ptr::null(),
            0,
        )
    };
    if r >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if transient(&e) { Ok(false) } else { Err(e) }
}

/// Wakes the driver up to use the fill ring: `recvfrom(fd, NULL, 0, MSG_DONTWAIT)`.
pub(crate) fn kick_rx(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a zero-length receive with no buffer and no address; the
    // kernel writes nothing to user memory.
    let r = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if r >= 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if transient(&e) { Ok(()) } else { Err(e) }
}

/// `poll(2)` for `events` on one descriptor; `Ok(true)` when ready.
pub(crate) fn poll(fd: BorrowedFd<'_>, events: i16, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, count 1.
    let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    match n {
        n if n > 0 => Ok(p.revents & events != 0),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// `poll(2)` for `events` on several descriptors; `Ok(true)` when one is
/// ready.
pub(crate) fn poll_many(fds: &[BorrowedFd<'_>], events: i16, timeout_ms: i32) -> io::Result<bool> {
    let mut ps: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: `ps` holds `ps.len()` valid `pollfd`s, borrowed for the call.
    let n = unsafe { libc::poll(ps.as_mut_ptr(), ps.len() as libc::nfds_t, timeout_ms) };
    match n {
        n if n > 0 => Ok(ps.iter().any(|p| p.revents & events != 0)),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The index of the interface called `name` in the caller's network namespace.
pub(crate) fn if_nametoindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// Moves the calling thread into the network namespace `ns` (a descriptor
/// of `/var/run/netns/NAME` or `/proc/PID/ns/net`).
pub(crate) fn setns_net(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a borrowed descriptor; it changes only the
    // calling thread's namespace, which no Rust invariant depends on.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const NLA_F_NESTED: u16 = 1 << 15;

/// Detaches the XDP program attached through netlink in mode `mode_flags`
/// (`XDP_FLAGS_SKB_MODE` or `XDP_FLAGS_DRV_MODE`) from `ifindex`:
/// `RTM_SETLINK` with `IFLA_XDP { FD = -1, FLAGS = mode_flags }`.
pub(crate) fn netlink_xdp_detach(ifindex: u32, mode_flags: u32) -> io::Result<()> {
    // nlmsghdr (16) + ifinfomsg (16) + IFLA_XDP (4) + FD (8) + FLAGS (8)
    const LEN: usize = 16 + 16 + 4 + 8 + 8;
    let mut msg = [0u8; LEN];
    let mut put = |off: usize, b: &[u8]| msg[off..off + b.len()].copy_from_slice(b);
    put(0, &(LEN as u32).to_ne_bytes());
    put(4, &libc::RTM_SETLINK.to_ne_bytes());
    put(
        6,
        &((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes(),
    );
    put(8, &1u32.to_ne_bytes()); // sequence
    // ifinfomsg: family AF_UNSPEC, pad, type 0, index, flags 0, change 0
    put(20, &(ifindex as i32).to_ne_bytes());
    put(32, &(4u16 + 8 + 8).to_ne_bytes());
    put(34, &(IFLA_XDP | NLA_F_NESTED).to_ne_bytes());
    put(36, &8u16.to_ne_bytes());
    put(38, &IFLA_XDP_FD.to_ne_bytes());
    put(40, &(-1i32).to_ne_bytes());
    put(44, &8u16.to_ne_bytes());
    put(46, &IFLA_XDP_FLAGS.to_ne_bytes());
    put(48, &mode_flags.to_ne_bytes());

    // SAFETY: plain system call; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `msg` is valid for `LEN` bytes; no address (the socket is
    // unconnected and the kernel is the default destination).
    let sent = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), LEN, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ack = [0u8; 256];
    // SAFETY: `ack` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // nlmsghdr then, for NLMSG_ERROR, `int error` (0 = ACK).
    if n < 20 || u16::from_ne_bytes([ack[4], ack[5]]) != libc::NLMSG_ERROR as u16 {
        return Err(io::Error::other("unexpected rtnetlink answer"));
    }
    let err = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-err))
    }
}
