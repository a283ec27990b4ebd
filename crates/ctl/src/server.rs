//! The control socket server that `xvsd` runs: it listens on a Unix
//! socket, checks who connects, reads [`Request`]s and hands them to the
//! daemon's [`Handler`].
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use xvs_ctl::model::Model;
//! use xvs_ctl::proto::{Request, Response};
//! use xvs_ctl::server::{Handler, Server, ServerConfig};
//!
//! struct Daemon(Mutex<Model>);
//!
//! impl Handler for Daemon {
//!     fn handle(&self, req: Request) -> Response {
//!         let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
//!         match req {
//!             Request::Apply { commands, dry_run } => match m.apply_batch(&commands, dry_run) {
//!                 Ok(()) => Response::Ok,
//!                 Err((i, message)) => Response::Error { index: Some(i), message },
//!             },
//!             Request::GetState { .. } => Response::State(m.state.clone()),
//!             _ => Response::error("not supported yet"),
//!         }
//!     }
//! }
//!
//! let server = Server::start(ServerConfig::new("/run/xvs/xvsd.sock"),
//!                            Arc::new(Daemon(Mutex::new(Model::new()))))?;
//! // ... run the data plane ...
//! server.shutdown(); // or drop it: stops accepting, removes the socket file
//! # Ok::<(), xvs_ctl::server::ServerError>(())
//! ```
//!
//! Contracts:
//! - the data plane never waits on this: the server runs on its own
//!   threads (one accept thread, one thread per client), and calls the
//!   handler from those;
//! - the handler is never called concurrently: calls are serialised by the
//!   server, so each request sees the effects of the previous ones and an
//!   [`Request::Apply`] batch is atomic with respect to other requests. A
//!   panicking handler is answered "internal error" and the server goes on;
//! - the handler only sees well-formed requests: `Ping` is answered by the
//!   server, and every command of an `Apply` has passed
//!   [`crate::Command::is_change`] and [`crate::Command::validate`] (an
//!   invalid one is answered with its index and the grammar's message);
//! - access: the socket file is mode 0660 (group set to
//!   [`ServerConfig::group`] when given), and each connection's peer
//!   credentials (`SO_PEERCRED`) must be root, the daemon's own user, or a
//!   member (primary or supplementary) of the configured group; anyone
//!   else gets one error line and is disconnected;
//! - limits: a request line is at most [`ServerConfig::max_request`]
//!   bytes; reading a whole request and writing its response each have
//!   [`ServerConfig::timeout`]; at most [`ServerConfig::max_clients`]
//!   clients are served at once (others get "too many clients"). Garbage,
//!   oversized or unknown requests get an error line and the connection is
//!   closed. One thread per client (rather than a poll loop) keeps the code
//!   plain blocking I/O with per-socket timeouts; the bound on clients
//!   bounds the threads, and a stalled client only holds its own thread
//!   until its timeout;
//! - the socket file: the parent directory is created; an existing socket
//!   file where no daemon answers is replaced (stale, left by a crash); a
//!   live daemon on it, or a file that is not a socket, makes
//!   [`Server::start`] fail. On shutdown the file is removed if it is still
//!   the one this server created.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::proto::{MAX_REQUEST, Request, Response, decode_request, encode_response};

/// The daemon side of the admin protocol.
///
/// `xvsd` implements this: given a [`Request`] (never `Ping`, which the
/// server answers; `Apply` commands already validated), return the
/// [`Response`] described on each request variant. Calls are serialised
/// (never two at once) and come from the server's threads, never from a
/// data-plane thread; keep them short (apply a configuration change,
/// publish a new snapshot, read counters), as a slow call delays other
/// clients, not the data plane.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: Request) -> Response;
}

/// Who may talk to the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// Users allowed whatever their groups (default: root and the user
    /// the daemon runs as).
    pub uids: Vec<u32>,
    /// Members of this group are allowed too.
    pub gid: Option<u32>,
}

/// A connecting process's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its (effective) user id.
    pub uid: u32,
    /// Its (effective) primary group id.
    pub gid: u32,
    /// Its supplementary groups (empty if unknown).
    pub groups: Vec<u32>,
}

impl Access {
    /// Whether `peer` may use the socket.
    pub fn allows(&self, peer: &Peer) -> bool {
        self.uids.contains(&peer.uid)
            || self
                .gid
                .is_some_and(|g| peer.gid == g || peer.groups.contains(&g))
    }
}

/// Where and how the server listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Socket path ([`crate::client::DEFAULT_SOCKET`] by default).
    pub path: PathBuf,
    /// Group that owns the socket file and may connect.
    pub group: Option<u32>,
    /// Who may connect; `None`: root, the daemon's user and `group`.
    pub access: Option<Access>,
    /// Most clients served at once.
    pub max_clients: usize,
    /// Time to read one request, and to write one response.
    pub timeout: Duration,
    /// Largest request line.
    pub max_request: usize,
}

impl ServerConfig {
    /// Defaults: no group, 16 clients, 5 s, [`MAX_REQUEST`].
    pub fn new(path: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            path: path.into(),
            group: None,
            access: None,
            max_clients: 16,
            timeout: Duration::from_secs(5),
            max_request: MAX_REQUEST,
        }
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Another daemon answers on the socket.
    #[error("{0}: another xvsd is running on this socket")]
    AlreadyRunning(PathBuf),
    /// The path exists and is not a socket (it is left alone).
    #[error("{0}: exists and is not a socket")]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

struct Shared {
    handler: Arc<dyn Handler>,
    /// Serialises handler calls.
    call: Mutex<()>,
    access: Access,
    max_clients: usize,
    timeout: Duration,
    max_request: usize,
    active: AtomicUsize,
    stop: AtomicBool,
}

/// A running control socket server. Dropping it shuts it down.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    /// (device, inode) of the socket file this server bound.
    ident: Option<(u64, u64)>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("access", &self.access)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the socket and starts serving `handler` on a new thread.
    pub fn start<H: Handler>(config: ServerConfig, handler: Arc<H>) -> Result<Server, ServerError> {
        let path = config.path.clone();
        let io_err = |what: &'static str| {
            let path = path.clone();
            move |source| ServerError::Io { path, what, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err("creating the directory"))?;
        }
        clear_stale(&path)?;
        let listener = UnixListener::bind(&path).map_err(io_err("bind"))?;
        // Peer credentials are the real check; the file mode keeps others
        // from even connecting.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
            .map_err(io_err("chmod"))?;
        if let Some(g) = config.group {
            nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(g)))
                .map_err(|e| io_err("chown")(io::Error::from(e)))?;
        }
        let ident = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        listener
            .set_nonblocking(true)
            .map_err(io_err("set_nonblocking"))?;
        let access = config.access.clone().unwrap_or_else(|| Access {
            uids: vec![0, nix::unistd::geteuid().as_raw()],
            gid: config.group,
        });
        let shared = Arc::new(Shared {
            handler,
            call: Mutex::new(()),
            access,
            max_clients: config.max_clients.max(1),
            timeout: config.timeout,
            max_request: config.max_request.max(64),
            active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("xvs-ctl-accept".into())
            .spawn(move || accept_loop(&listener, &s))
            .map_err(io_err("spawning the accept thread"))?;
        Ok(Server {
            path,
            ident,
            shared,
            accept: Some(accept),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clients being served now.
    pub fn active_clients(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Stops accepting, waits (up to the timeout) for the clients being
    /// served, removes the socket file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept thread out of its poll (it sees the flag before
        // accepting), unless the path is no longer our socket.
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.ident {
            drop(std::os::unix::net::UnixStream::connect(&self.path));
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let deadline = Instant::now() + self.shared.timeout * 2;
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let still_ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if still_ours.is_some() && still_ours == self.ident {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop();
        }
    }
}

/// Removes a stale socket file; refuses a live one or a non-socket.
fn clear_stale(path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServerError::Io {
                path: path.into(),
                what: "stat",
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket(path.into()));
    }
    match UnixStream::connect(path) {
        // Something accepts connections there: a live daemon (even if it
        // does not answer in time, it is not ours to replace).
        Ok(_) => Err(ServerError::AlreadyRunning(path.into())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|source| ServerError::Io {
                path: path.into(),
                what: "removing the stale socket",
                source,
            }),
        Err(source) => Err(ServerError::Io {
            path: path.into(),
            what: "connect (checking for a live daemon)",
            source,
        }),
    }
}

/// Longest sleep of the accept thread while no client comes: a client
/// wakes it at once (`poll(2)` on the listener), [`Server::shutdown`] too
/// (it connects once), so this only bounds a missed wake-up. The thread
/// used to poll every 20 ms: 50 wake-ups a second of an idle daemon, on
/// whatever core it ran (a worker's, in the veth benchmark).
const IDLE_WAIT_MS: u16 = 1000;

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => admit(stream, shared),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::from(IDLE_WAIT_MS)).is_err() {
                    // EINTR or worse: do not spin.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EMFILE and the like: back off, keep serving.
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Decrements the client count when a client thread ends (or is never
/// started).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(mut stream: UnixStream, shared: &Arc<Shared>) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(shared.timeout)).is_err()
        || stream.set_read_timeout(Some(shared.timeout)).is_err()
    {
        return;
    }
    match peer_of(&stream) {
        Some(peer) if shared.access.allows(&peer) => {}
        Some(peer) => {
            let msg = format!(
                "Permission denied: uid {} is not allowed on the xvsd socket",
                peer.uid
            );
            let _ = stream.write_all(encode_response(&Response::error(msg)).as_bytes());
            return;
        }
        None => {
            let _ = stream.write_all(
                encode_response(&Response::error("cannot read peer credentials")).as_bytes(),
            );
            return;
        }
    }
    if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.max_clients {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        let _ = stream
            .write_all(encode_response(&Response::error("too many clients, try again")).as_bytes());
        return;
    }
    let slot = Slot(Arc::clone(shared));
    let s = Arc::clone(shared);
    // If the thread cannot be spawned, the closure (with the slot and the
    // stream) is dropped: the client is disconnected, the count restored.
    let _ = std::thread::Builder::new()
        .name("xvs-ctl-client".into())
        .spawn(move || {
            let _slot = slot;
            serve(stream, &s);
        });
}

/// The peer's credentials (`SO_PEERCRED`) and supplementary groups (from
/// `/proc/PID/status`, only needed when a group is configured).
fn peer_of(stream: &UnixStream) -> Option<Peer> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(stream, PeerCredentials).ok()?;
    let groups = std::fs::read_to_string(format!("/proc/{}/status", cred.pid()))
        .map(|s| parse_groups(&s))
        .unwrap_or_default();
    Some(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        groups,
    })
}

/// The `Groups:` line of `/proc/PID/status`.
pub fn parse_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

enum ReadError {
    Eof,
    TooLarge,
    TimedOut,
    Io,
}

/// Reads one line into `line` (bytes after it stay in `pending`), within
/// the server's timeout and size limit.
fn read_line(
    stream: &mut UnixStream,
    pending: &mut Vec<u8>,
    shared: &Shared,
) -> Result<Vec<u8>, ReadError> {
    let deadline = Instant::now() + shared.timeout;
    let mut scanned = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(pos) = pending[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + pos + 1;
            if end > shared.max_request {
                return Err(ReadError::TooLarge);
            }
            let rest = pending.split_off(end);
            return Ok(std::mem::replace(pending, rest));
        }
        scanned = pending.len();
        if pending.len() >= shared.max_request {
            return Err(ReadError::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(ReadError::TimedOut);
        }
        match stream.read(&mut chunk) {
            Ok(0) if pending.is_empty() => return Err(ReadError::Eof),
            // A last request without its newline.
            Ok(0) => return Ok(std::mem::take(pending)),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::TimedOut);
            }
            Err(_) => return Err(ReadError::Io),
        }
    }
}

fn serve(mut stream: UnixStream, shared: &Shared) {
    let mut pending = Vec::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let line = match read_line(&mut stream, &mut pending, shared) {
            Ok(l) => l,
            Err(ReadError::TooLarge) => {
                let msg = format!("request too large (limit {} bytes)", shared.max_request);
                let _ = stream.write_all(encode_response(&Response::error(msg)).as_bytes());
                return;
            }
            Err(ReadError::TimedOut) if !pending.is_empty() => {
                let _ = stream.write_all(
                    encode_response(&Response::error("timed out reading the request")).as_bytes(),
                );
                return;
            }
            Err(_) => return,
        };
        let (resp, keep) = match decode_request(&line) {
            Ok(req) => (answer(req, shared), true),
            Err(e) => (e, false),
        };
        if stream.write_all(encode_response(&resp).as_bytes()).is_err() || !keep {
            return;
        }
    }
}

/// The response to a decoded request: checks, then the handler.
fn answer(req: Request, shared: &Shared) -> Response {
    match &req {
        Request::Ping => return Response::Ok,
        Request::Apply { commands, .. } => {
            for (i, c) in commands.iter().enumerate() {
                let err = if !c.is_change() {
                    Some(format!("{} cannot be applied (not a change)", c.option()))
                } else {
                    c.validate().err().map(|e| e.to_string())
                };
                if let Some(message) = err {
                    return Response::Error {
                        index: Some(i),
                        message,
                    };
                }
            }
        }
        _ => {}
    }
    let _guard = shared.call.lock().unwrap_or_else(|p| p.into_inner());
    let handler = &shared.handler;
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(req))) {
        Ok(resp) => resp,
        Err(_) => Response::error("internal error in xvsd (handler panicked)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let a = Access {
            uids: vec![0, 1000],
            gid: Some(50),
        };
        let p = |uid, gid, groups: &[u32]| Peer {
            uid,
            gid,
            groups: groups.to_vec(),
        };
        assert!(a.allows(&p(0, 0, &[])));
        assert!(a.allows(&p(1000, 1000, &[])));
        assert!(a.allows(&p(1001, 50, &[])));
        assert!(a.allows(&p(1001, 1001, &[4, 50])));
        assert!(!a.allows(&p(1001, 1001, &[4, 51])));
        let no_group = Access {
            uids: vec![0],
            gid: None,
        };
        assert!(!no_group.allows(&p(1001, 0, &[0])));
        assert_eq!(
            parse_groups("Name:\tx\nGroups:\t4 24 27 \nNSpid:\t1\n"),
            [4, 24, 27]
        );
        assert!(parse_groups("Groups:\n").is_empty());
        assert!(parse_groups("").is_empty());
    }
}
