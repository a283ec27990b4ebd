//! A small HTTP/1.1 client for health checks and feedback polls: one `GET`
//! per connection, `Connection: close`, everything bounded.
//!
//! The response head (status line and headers) may be at most [`MAX_HEAD`]
//! bytes; the body is read only when the caller wants it, up to the
//! caller's limit, framed by `Content-Length`, `Transfer-Encoding:
//! chunked` or the end of the connection. Nothing a server sends can make
//! this code panic, allocate without bound or wait past the budget.

use std::net::SocketAddr;

use crate::net::{Budget, Fail, connect_tcp, read_some, write_all};

/// Largest accepted response head (status line and headers), bytes.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Longest chunk-extension or trailer line, bytes.
const MAX_LINE: usize = 4096;

/// How the body of a response ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 for responses without a body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// The parsed status line and the headers this client cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) framing: Framing,
}

/// The length of the response head in `buf` (up to and including the
/// blank line), if it is all there. Bare `\n` line ends are accepted.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// Parses a response head (as delimited by [`head_end`]).
pub(crate) fn parse_head(head: &[u8]) -> Result<Head, String> {
    let mut lines = head.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)
        .ok_or_else(|| format!("bad status line '{}'", printable(trim(status_line), 40)))?;
    let (mut length, mut chunked, mut other_coding) = (None, false, false);
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue; // obsolete line folding: not a header of interest
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (trim(&line[..colon]), trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_length(value).ok_or("bad Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".to_owned());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value
                .split(|&b| b == b',')
                .next_back()
                .map(trim)
                .unwrap_or_default();
            if last.eq_ignore_ascii_case(b"chunked") {
                chunked = true;
            } else if !last.eq_ignore_ascii_case(b"identity") {
                other_coding = true;
            }
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if other_coding {
        Framing::Close
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    Ok(Head { status, framing })
}

/// `HTTP/1.x SSS[ reason]`: the status code.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = trim(line);
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let [minor, b' ', d0, d1, d2, tail @ ..] = rest else {
        return None;
    };
    if !minor.is_ascii_digit() || !matches!(tail.first(), None | Some(b' ')) {
        return None;
    }
    let mut status = 0u16;
    for d in [d0, d1, d2] {
        if !d.is_ascii_digit() {
            return None;
        }
        status = status * 10 + u16::from(d - b'0');
    }
    (status >= 100).then_some(status)
}

fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// At most `max` characters of `bytes`, non-printable ones as `.`.
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// In the hex digits of a chunk size.
    Size { value: u64, digits: u8 },
    /// In a chunk extension (or padding) before the end of the size line.
    Ext { value: u64, len: usize },
    /// After the `\r` of the size line.
    SizeCr { value: u64 },
    /// In chunk data.
    Data { left: u64 },
    /// After chunk data, expecting `\r\n`.
    DataEnd,
    /// After the `\r` following chunk data.
    DataEndCr,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// In a trailer line.
    Trailer { len: usize },
    /// After the `\r` of the final blank line.
    FinalCr,
    /// The last chunk and the trailers were read.
    Done,
}

/// An incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Clone, Debug)]
pub(crate) struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: ChunkState::SizeStart,
            trailer_bytes: 0,
        }
    }
}

impl Chunked {
    /// Whether the last chunk and the trailers were read.
    pub(crate) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes `input`, handing the chunk data to `out`. Returns the number
    /// of bytes used: all of `input`, or fewer once done.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<usize, String> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                Done => return Ok(i),
                Data { left } => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out(&input[i..i + n])?;
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 { DataEnd } else { Data { left } };
                    continue;
                }
                SizeStart => match hex_value(b) {
                    Some(d) => Size {
                        value: u64::from(d),
                        digits: 1,
                    },
                    None => return Err("bad chunk size".to_owned()),
                },
                Size { value, digits } => match (hex_value(b), b) {
                    (Some(d), _) if digits < 15 => Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    (Some(_), _) => return Err("chunk size too large".to_owned()),
                    (None, b'\r') => SizeCr { value },
                    (None, b'\n') => size_line_end(value),
                    (None, b';' | b' ' | b'\t') => Ext { value, len: 1 },
                    (None, _) => return Err("bad chunk size".to_owned()),
                },
                Ext { value, len } => match b {
                    b'\n' => size_line_end(value),
                    _ if len >= MAX_LINE => return Err("chunk extension too long".to_owned()),
                    _ => Ext {
                        value,
                        len: len + 1,
                    },
                },
                SizeCr { value } => match b {
                    b'\n' => size_line_end(value),
                    _ => return Err("bad chunk size line".to_owned()),
                },
                DataEnd => match b {
                    b'\r' => DataEndCr,
                    b'\n' => SizeStart,
                    _ => return Err("missing CRLF after chunk data".to_owned()),
                },
                DataEndCr => match b {
                    b'\n' => SizeStart,
                    _ => return Err("missing CRLF after chunk data".to_owned()),
                },
                TrailerStart => match b {
                    b'\r' => FinalCr,
                    b'\n' => Done,
                    _ => self.trailer(1)?,
                },
                Trailer { len } => match b {
                    b'\n' => TrailerStart,
                    _ => self.trailer(len + 1)?,
                },
                FinalCr => match b {
                    b'\n' => Done,
                    _ => return Err("bad end of chunked body".to_owned()),
                },
            };
            i += 1;
        }
        Ok(i)
    }

    fn trailer(&mut self, len: usize) -> Result<ChunkState, String> {
        self.trailer_bytes += 1;
        if len > MAX_LINE || self.trailer_bytes > MAX_HEAD {
            return Err("chunked trailers too long".to_owned());
        }
        Ok(ChunkState::Trailer { len })
    }
}

fn size_line_end(value: u64) -> ChunkState {
    if value == 0 {
        ChunkState::TrailerStart
    } else {
        ChunkState::Data { left: value }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One `GET` request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Get<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    pub(crate) host: Option<&'a str>,
}

impl Get<'_> {
    /// The request bytes; the `Host` header defaults to the address, with
    /// its port unless 80.
    pub(crate) fn request(&self) -> String {
        let host = match self.host {
            Some(h) => h.to_owned(),
            None if self.addr.port() == 80 => match self.addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            },
            None => self.addr.to_string(),
        };
        format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: xvs-health\r\nAccept: */*\r\n\r\n",
            self.path
        )
    }
}

/// What to do with the body: nothing, or hand up to `limit` decoded bytes
/// to `sink` (more is an error).
pub(crate) struct BodyReader<'s> {
    pub(crate) limit: usize,
    pub(crate) sink: &'s mut dyn FnMut(&[u8]),
}

impl std::fmt::Debug for BodyReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Sends `req` and reads the response within `budget`: the status code,
/// and the body into `body` if given.
pub(crate) fn get(
    req: &Get<'_>,
    budget: &Budget<'_>,
    body: Option<BodyReader<'_>>,
) -> Result<u16, Fail> {
    let mut stream = connect_tcp(req.addr, budget)?;
    write_all(&mut stream, req.request().as_bytes(), budget)?;

    let mut buf = vec![0u8; MAX_HEAD + 1];
    let mut have = 0;
    // Where the blank line may start: a search resumes there, so a server
    // dripping one byte at a time costs linear time.
    let mut scanned = 0;
    let (head, end) = loop {
        if let Some(len) = head_end(&buf[scanned..have]) {
            let end = scanned + len;
            let head = parse_head(&buf[..end]).map_err(Fail::Failed)?;
            if (100..=199).contains(&head.status) && head.status != 101 {
                // An interim response (100 Continue, 103 Early Hints): the
                // real one follows.
                buf.copy_within(end..have, 0);
                have -= end;
                scanned = 0;
                continue;
            }
            break (head, end);
        }
        scanned = have.saturating_sub(2);
        if have == buf.len() {
            return Err(Fail::Failed(format!(
                "response head larger than {MAX_HEAD} bytes"
            )));
        }
        let n = read_some(
            &mut stream,
            &mut buf[have..],
            budget,
            "waiting for the response",
        )?;
        if n == 0 {
            return Err(Fail::Failed(if have == 0 {
                "connection closed without a response".to_owned()
            } else {
                "connection closed in the response head".to_owned()
            }));
        }
        have += n;
    };
    let Some(BodyReader { limit, sink }) = body else {
        return Ok(head.status);
    };

    let too_large = || Fail::Failed(format!("body larger than {limit} bytes"));
    let mut total = 0usize;
    let mut deliver = |bytes: &[u8]| -> Result<(), String> {
        total += bytes.len();
        if total > limit {
            return Err(String::new());
        }
        sink(bytes);
        Ok(())
    };
    let mut chunked = Chunked::default();
    let mut left = match head.framing {
        Framing::Length(n) if n > limit as u64 => return Err(too_large()),
        Framing::Length(n) => n as usize,
        _ => usize::MAX,
    };
    // Bytes after the head were read with it; then read the rest.
    let mut pending = end..have;
    loop {
        let data = &buf[pending.clone()];
        let result = match head.framing {
            Framing::Chunked => chunked.feed(data, &mut deliver).map(|_| ()),
            Framing::Length(_) => {
                let n = data.len().min(left);
                left -= n;
                deliver(&data[..n])
            }
            Framing::Close => deliver(data),
        };
        match result {
            Ok(()) => {}
            Err(e) if e.is_empty() => return Err(too_large()),
            Err(e) => return Err(Fail::Failed(e)),
        }
        if chunked.done() || left == 0 {
            return Ok(head.status);
        }
        let n = read_some(&mut stream, &mut buf, budget, "reading the body")?;
        if n == 0 {
            return match head.framing {
                Framing::Close => Ok(head.status),
                _ => Err(Fail::Failed("connection closed in the body".to_owned())),
            };
        }
        pending = 0..n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn head_end_finds_blank_line() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody"), Some(17));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n"), None);
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\n\r"), None);
    }

    #[test]
    fn status_lines() {
        for (line, want) in [
            (&b"HTTP/1.1 200 OK"[..], Some(200)),
            (b"HTTP/1.0 503", Some(503)),
            (b"HTTP/1.1 404 Not Found\r", Some(404)),
            (b"HTTP/1.1 099 x", None),
            (b"HTTP/2 200", None),
            (b"HTTP/1.1 20", None),
            (b"HTTP/1.1 2000", None),
            (b"HTTP/1.1 2x0 OK", None),
            (b"SSH-2.0-OpenSSH", None),
            (b"", None),
        ] {
            assert_eq!(parse_status_line(line), want, "{}", printable(line, 40));
        }
    }

    #[test]
    fn framing() {
        let head = |h: &str| parse_head(h.as_bytes());
        let ok = |h: &str| head(h).unwrap().framing;
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
            Framing::Length(12)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\ncontent-length:12\r\n\r\n"),
            Framing::Length(12)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Framing::Close
        );
        assert_eq!(ok("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n"), Framing::Close);
        assert_eq!(
            ok("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(0)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\ngarbage line\r\n folded\r\n\r\n"),
            Framing::Close
        );
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(
            head("hello\r\n\r\n")
                .unwrap_err()
                .contains("bad status line 'hello'")
        );
    }

    fn dechunk(input: &[u8]) -> Result<(Vec<u8>, usize, bool), String> {
        let mut out = Vec::new();
        let mut d = Chunked::default();
        let used = d.feed(input, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok((out, used, d.done()))
    }

    #[test]
    fn chunked_vectors() {
        let (out, used, done) =
            dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nextra")
                .unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert!(done);
        assert_eq!(used, 49);
        let (out, _, done) = dechunk(b"3\nabc\n0\nX-Trailer: 1\n\n").unwrap();
        assert_eq!((out.as_slice(), done), (&b"abc"[..], true));
        let (_, _, done) = dechunk(b"3\r\nabc\r\n").unwrap();
        assert!(!done);
        for bad in [
            &b"x\r\n"[..],
            b"3\r\nabcX",
            b"1ffffffffffffffff\r\n",
            b"\r\n",
            b"0\r\n\rX",
        ] {
            assert!(dechunk(bad).is_err(), "{}", printable(bad, 40));
        }
        let long_ext = [&b"1;"[..], &[b'a'; MAX_LINE]].concat();
        assert_eq!(dechunk(&long_ext).unwrap_err(), "chunk extension too long");
        let long_trailer = [&b"0\r\n"[..], &[b'a'; MAX_LINE + 1]].concat();
        assert_eq!(
            dechunk(&long_trailer).unwrap_err(),
            "chunked trailers too long"
        );
    }

    #[test]
    fn request_host() {
        let req = |addr: &str, host| {
            Get {
                addr: addr.parse().unwrap(),
                path: "/h",
                host,
            }
            .request()
        };
        assert!(req("10.0.0.1:80", None).contains("\r\nHost: 10.0.0.1\r\n"));
        assert!(req("10.0.0.1:8080", None).contains("\r\nHost: 10.0.0.1:8080\r\n"));
        assert!(req("[2001:db8::1]:80", None).contains("\r\nHost: [2001:db8::1]\r\n"));
        assert!(req("[2001:db8::1]:81", None).contains("\r\nHost: [2001:db8::1]:81\r\n"));
        let r = req("10.0.0.1:80", Some("www.example.com"));
        assert!(r.starts_with("GET /h HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }

    fn encode_chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = body;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(i)
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            out.extend_from_slice(format!("{n:X}\r\n").as_bytes());
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    proptest! {
        #[test]
        fn chunked_round_trip_any_split(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            sizes in proptest::collection::vec(1usize..50, 0..10),
            split in any::<proptest::sample::Index>(),
        ) {
            let wire = encode_chunked(&body, &sizes);
            let at = split.index(wire.len() + 1);
            let mut d = Chunked::default();
            let mut out = Vec::new();
            let mut sink = |b: &[u8]| { out.extend_from_slice(b); Ok(()) };
            let a = d.feed(&wire[..at], &mut sink).unwrap();
            prop_assert_eq!(a, at);
            d.feed(&wire[at..], &mut sink).unwrap();
            prop_assert!(d.done());
            prop_assert_eq!(out, body);
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = head_end(&bytes);
            let _ = parse_head(&bytes);
            let _ = dechunk(&bytes);
        }
    }
}
