//! Sockets with a deadline that a stop request can cut short.
//!
//! Every blocking wait here lasts at most [`SLICE`]; between slices the
//! [`Budget`] checks the check's deadline and the monitor's stop flag, so a
//! check ends at its timeout and a stopping monitor never waits for a hung
//! server. The TCP connect is a non-blocking `connect` plus `poll` (std's
//! `connect_timeout` cannot be interrupted).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, connect, getsockopt, socket, sockopt,
};

/// Longest single blocking wait: how late a stop request may be noticed.
pub(crate) const SLICE: Duration = Duration::from_millis(20);

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The monitor is stopping; the result is thrown away.
    Cancelled,
    /// The deadline passed while doing the named step.
    Timeout(&'static str),
    /// Anything else, as the detail text to report.
    Failed(String),
}

impl Fail {
    /// The detail text of a failed check whose budget was `timeout_ms`.
    pub(crate) fn detail(&self, timeout_ms: u32) -> String {
        match self {
            Fail::Cancelled => "cancelled".to_owned(),
            Fail::Timeout(step) => format!("timeout after {timeout_ms} ms ({step})"),
            Fail::Failed(text) => text.clone(),
        }
    }
}

/// The time left for one check, and the stop flag.
#[derive(Debug)]
pub(crate) struct Budget<'a> {
    deadline: Instant,
    cancel: &'a AtomicBool,
}

impl<'a> Budget<'a> {
    pub(crate) fn new(timeout: Duration, cancel: &'a AtomicBool) -> Budget<'a> {
        Budget {
            deadline: Instant::now() + timeout,
            cancel,
        }
    }

    /// The next wait: at most [`SLICE`], never past the deadline. Fails
    /// when stopping, or when the deadline has passed (`step` names what
    /// was being waited for).
    pub(crate) fn slice(&self, step: &'static str) -> Result<Duration, Fail> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Fail::Cancelled);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail::Timeout(step));
        }
        Ok(left.min(SLICE))
    }
}

fn errno_text(e: Errno) -> String {
    match e {
        Errno::ECONNREFUSED => "connect refused".to_owned(),
        Errno::ENETUNREACH => "network unreachable".to_owned(),
        Errno::EHOSTUNREACH => "host unreachable".to_owned(),
        Errno::ECONNRESET => "connection reset".to_owned(),
        e => format!("connect failed: {}", e.desc()),
    }
}

/// Opens a TCP connection to `addr` within the budget. The stream
/// returned is blocking, without timeouts set.
pub(crate) fn connect_tcp(addr: SocketAddr, budget: &Budget<'_>) -> Result<TcpStream, Fail> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Fail::Failed(format!("socket: {}", e.desc())))?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) | Err(Errno::EINTR) => loop {
            let slice = budget.slice("connect")?;
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            let ms = u16::try_from(slice.as_millis().max(1)).unwrap_or(u16::MAX);
            match poll(&mut fds, ms) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => return Err(Fail::Failed(format!("poll: {}", e.desc()))),
            }
        },
        Err(e) => return Err(Fail::Failed(errno_text(e))),
    }
    match getsockopt(&fd, sockopt::SocketError) {
        Ok(0) => {}
        Ok(err) => return Err(Fail::Failed(errno_text(Errno::from_raw(err)))),
        Err(e) => return Err(Fail::Failed(format!("getsockopt: {}", e.desc()))),
    }
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false).map_err(|e| io_fail(&e))?;
    Ok(stream)
}

/// The detail text of an I/O error on an established connection.
pub(crate) fn io_fail(e: &io::Error) -> Fail {
    let text = match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::ConnectionRefused => "connect refused".to_owned(),
        io::ErrorKind::BrokenPipe => "connection closed by the server".to_owned(),
        _ => format!("i/o error: {e}"),
    };
    Fail::Failed(text)
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Reads what is there (0 at the end of the stream), waiting in slices.
pub(crate) fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    budget: &Budget<'_>,
    step: &'static str,
) -> Result<usize, Fail> {
    loop {
        let slice = budget.slice(step)?;
        stream
            .set_read_timeout(Some(slice))
            .map_err(|e| io_fail(&e))?;
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if is_wait(&e) => continue,
            Err(e) => return Err(io_fail(&e)),
        }
    }
}

/// Writes all of `data`, waiting in slices.
pub(crate) fn write_all(
    stream: &mut TcpStream,
    mut data: &[u8],
    budget: &Budget<'_>,
) -> Result<(), Fail> {
    while !data.is_empty() {
        let slice = budget.slice("sending the request")?;
        stream
            .set_write_timeout(Some(slice))
            .map_err(|e| io_fail(&e))?;
        match stream.write(data) {
            Ok(0) => return Err(Fail::Failed("connection closed by the server".to_owned())),
            Ok(n) => data = &data[n..],
            Err(e) if is_wait(&e) => continue,
            Err(e) => return Err(io_fail(&e)),
        }
    }
    Ok(())
}
