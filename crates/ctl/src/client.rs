//! The client side of the admin protocol, as `xvsadm` uses it.
//!
//! ```no_run
//! use xvs_ctl::client::{Client, socket_path};
//! use xvs_ctl::proto::{Request, Response};
//!
//! let mut c = Client::connect(&socket_path(None))?;
//! if let Response::Timeouts(t) = c.call(&Request::GetTimeouts)? {
//!     println!("{}", xvs_ctl::list::list_timeouts(&t));
//! }
//! # Ok::<(), xvs_ctl::client::ClientError>(())
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proto::{MAX_RESPONSE, Request, Response, decode_response, encode_request};

/// Where `xvsd` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/xvs/xvsd.sock";

/// Environment variable that overrides [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "XVS_SOCKET";

/// The socket path: `flag` (`--socket`) if given, else `$XVS_SOCKET` if
/// set and not empty, else [`DEFAULT_SOCKET`].
pub fn socket_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_owned();
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// Why a call failed (the daemon's own refusals are [`Response::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No daemon to talk to.
    #[error(
        "cannot connect to xvsd at {path}: {source} (is xvsd running? --socket or XVS_SOCKET choose the socket)"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The connection broke or timed out.
    #[error("talking to xvsd: {0}")]
    Io(#[from] io::Error),
    /// The daemon closed the connection without answering.
    #[error("xvsd closed the connection without answering")]
    Closed,
    /// An answer that does not parse.
    #[error("{0}")]
    Protocol(String),
}

/// A connection to the daemon.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects, with a 60 s timeout on each read and write.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        let t = Some(Duration::from_secs(60));
        stream.set_read_timeout(t)?;
        stream.set_write_timeout(t)?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and reads its response.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let line = encode_request(req);
        // If the daemon refuses us (permission, size), it answers and
        // closes while we write: read its answer before reporting the
        // write error.
        let sent = self.reader.get_mut().write_all(line.as_bytes());
        match self.read_response() {
            Err(ClientError::Closed) | Err(ClientError::Io(_)) if sent.is_err() => {
                Err(ClientError::Io(
                    sent.err()
                        .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()),
                ))
            }
            other => other,
        }
    }

    fn read_response(&mut self) -> Result<Response, ClientError> {
        let mut buf = Vec::new();
        let limit = MAX_RESPONSE as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        if buf.len() > MAX_RESPONSE {
            return Err(ClientError::Protocol("response too large".into()));
        }
        decode_response(&buf).map_err(ClientError::Protocol)
    }
}
