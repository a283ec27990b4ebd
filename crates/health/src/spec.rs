//! Configuration types: what to check ([`Check`]), how often and how
//! patiently ([`Timing`]), and what a service does with the results
//! ([`ServicePolicy`]).
//!
//! Every type has a compact text form for command lines, read by
//! `parse` (or [`FromStr`]) and written by [`Display`]; `parse` of the
//! displayed text gives the value back, and every value `parse` returns
//! passes `validate`. The grammar is a kind or nothing, then options
//! separated by commas, each `name=value` or a bare flag:
//!
//! | type | text form (defaults left out when displayed) |
//! |---|---|
//! | [`Check`] | `tcp` · `tcp:port=8080` |
//! | | `http:port=8080,path=/health,status=200,digest=<32 hex>,host=www.example.com` |
//! | | `udp:port=53,payload=<hex>,expect=<hex>,require-reply` |
//! | | `misc:dynamic,cmd=<shell command, to the end of the text>` |
//! | [`Timing`] | `interval=5s,timeout=3s,rise=2,fall=3,alpha` (durations need a unit, `ms` or `s`) |
//! | [`ServicePolicy`] | `quorum=1,hysteresis=0,sorry=192.0.2.9:80,inhibit` |
//!
//! `cmd=` is the last option of a MISC check and takes the rest of the
//! text as it is, commas and spaces included. Other values cannot contain
//! a comma: write `%2C` in an HTTP path. Options may come in any order,
//! each at most once; the ones left out take their defaults (HTTP `path=/`
//! and `status=200`; [`Timing::default`]; [`ServicePolicy::default`]).

use std::fmt::{self, Display, Write as _};
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted HTTP path, host name or MISC command, in bytes.
pub const MAX_TEXT: usize = 4096;
/// Largest UDP payload or expected reply prefix: the largest IPv4 UDP
/// datagram.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A health check of one real server.
///
/// `port` overrides the real server's port for the check (`connect_port`
/// in keepalived); `None` checks the real server's own port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Check {
    /// A TCP connection is opened and closed; nothing is sent.
    Tcp {
        /// Port to connect to instead of the real server's.
        #[serde(default)]
        port: Option<u16>,
    },
    /// `GET path HTTP/1.1` with `Connection: close`; the check passes when
    /// the status is `status` and, with `digest`, when the MD5 of the body
    /// is `digest` (keepalived's `HTTP_GET` `url { path digest
    /// status_code }`).
    Http {
        /// Port to connect to instead of the real server's.
        #[serde(default)]
        port: Option<u16>,
        /// Request path, starting with `/`.
        #[serde(default = "default_path")]
        path: String,
        /// The one status code that passes.
        #[serde(default = "default_status")]
        status: u16,
        /// MD5 of the body, 32 hex digits (keepalived `genhash` output).
        #[serde(default)]
        digest: Option<String>,
        /// `Host` header; default the checked address and port.
        #[serde(default)]
        host: Option<String>,
    },
    /// A datagram with `payload` is sent on a connected UDP socket.
    ///
    /// A reply passes when it starts with `expect` (any reply when
    /// `expect` is `None`); a reply that does not is a failure. With no
    /// reply before the timeout, the check passes unless `require_reply`:
    /// the port is considered open because no ICMP port unreachable came
    /// back (the connected socket reports one as `ECONNREFUSED`).
    Udp {
        /// Port to send to instead of the real server's.
        #[serde(default)]
        port: Option<u16>,
        /// Datagram to send (may be empty).
        #[serde(default)]
        payload: Vec<u8>,
        /// Prefix the reply must start with.
        #[serde(default)]
        expect: Option<Vec<u8>>,
        /// Fail when no reply comes back before the timeout.
        #[serde(default)]
        require_reply: bool,
    },
    /// `command` run with `/bin/sh -c`, with `XVS_RS_ADDR` and
    /// `XVS_RS_PORT` in its environment, killed (its whole process group)
    /// at the timeout. Exit 0 passes, anything else fails; with `dynamic`
    /// (keepalived `misc_dynamic`), exit 1 fails and 2..=255 passes with
    /// weight `code - 2`.
    Misc {
        /// Shell command line.
        command: String,
        /// Exit codes 2..=255 set the weight.
        #[serde(default)]
        dynamic: bool,
    },
}

fn default_path() -> String {
    "/".to_owned()
}

fn default_status() -> u16 {
    200
}

/// When and how often a target is checked, and how many results in a row
/// change its state.
///
/// The defaults (interval 5 s, timeout 3 s, rise 2, fall 3, no alpha) sit
/// between keepalived's (`delay_loop` 60 s, `connect_timeout` 5 s,
/// `retry` 1, so down after 2 failures and up after 1 success) and
/// HAProxy's (`inter` 2 s, timeout = inter, `rise` 2, `fall` 3): a server
/// that refuses connections is out after three checks (10 to 15 s), a
/// silent one after about 25 s (each check waits its 3 s), a flapping one
/// needs two good checks in a row to come back, and a thousand targets
/// cost 200 checks a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Timing {
    /// Time from the end of one check to the start of the next, ms.
    pub interval_ms: u32,
    /// Budget of one whole check (connect, request, reply, or the
    /// process's run time), ms.
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down target up.
    pub rise: u16,
    /// Consecutive failures that take an up target down.
    pub fall: u16,
    /// Start down, and come up at the first success (keepalived `alpha`);
    /// without it a new target starts up.
    pub alpha: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            interval_ms: 5000,
            timeout_ms: 3000,
            rise: 2,
            fall: 3,
            alpha: false,
        }
    }
}

/// What a virtual service does with its real servers' health
/// (keepalived's `virtual_server` options; see [`crate::policy`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ServicePolicy {
    /// Minimum sum of the weights of the live real servers for the
    /// service to have quorum (keepalived `quorum`, default 1).
    pub quorum: u32,
    /// Quorum is lost below `quorum - hysteresis` and regained at
    /// `quorum + hysteresis` (keepalived `hysteresis`, default 0).
    pub hysteresis: u32,
    /// Server that takes the traffic instead of the real servers while
    /// quorum is lost (keepalived `sorry_server`).
    pub sorry_server: Option<SocketAddr>,
    /// A failed real server stays with weight 0 instead of being removed
    /// (keepalived `inhibit_on_failure`).
    pub inhibit_on_failure: bool,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            quorum: 1,
            hysteresis: 0,
            sorry_server: None,
            inhibit_on_failure: false,
        }
    }
}

/// Where the feedback agent reads a real server's load (xvs `--feedback`,
/// see [`crate::feedback`]): `GET path` on the real server's address and
/// `port` (its own port when `None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Feedback {
    /// Port of the load endpoint instead of the real server's.
    #[serde(default)]
    pub port: Option<u16>,
    /// Path of the load endpoint.
    #[serde(default = "default_path")]
    pub path: String,
    /// `Host` header; default the checked address and port.
    #[serde(default)]
    pub host: Option<String>,
}

/// Why a text form or a value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The check kind is not one of `tcp`, `http`, `udp`, `misc`.
    #[error("unknown check kind '{0}' (expected tcp, http, udp or misc)")]
    UnknownKind(String),
    /// An option the type does not have.
    #[error("unknown option '{option}' for {what}")]
    UnknownOption {
        /// The type or check kind.
        what: &'static str,
        /// The option as written.
        option: String,
    },
    /// The same option twice.
    #[error("option '{0}' given twice")]
    Duplicate(String),
    /// An option that needs a value was written as a flag.
    #[error("option '{0}' needs a value")]
    MissingValue(String),
    /// A flag was given a value.
    #[error("option '{0}' takes no value")]
    UnexpectedValue(String),
    /// A value out of range or malformed.
    #[error("invalid {option} '{value}': {reason}")]
    InvalidValue {
        /// The option.
        option: &'static str,
        /// The value as written (cut to 64 characters).
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A required option is absent.
    #[error("{what} needs {option}")]
    Required {
        /// The type or check kind.
        what: &'static str,
        /// The missing option.
        option: &'static str,
    },
}

fn invalid(option: &'static str, value: &str, reason: &'static str) -> SpecError {
    SpecError::InvalidValue {
        option,
        value: value.chars().take(64).collect(),
        reason,
    }
}

/// One `name[=value]` option of a text form.
struct Opt<'a> {
    name: &'a str,
    value: Option<&'a str>,
}

/// Splits `text` into options at commas. When `rest_option` is given, an
/// option starting with `rest_option=` takes the rest of the text.
fn split_options<'a>(text: &'a str, rest_option: Option<&str>) -> Vec<Opt<'a>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (item, next) = match rest_option {
            Some(r) if rest.strip_prefix(r).is_some_and(|t| t.starts_with('=')) => (rest, ""),
            _ => match rest.split_once(',') {
                Some((item, next)) => (item, next),
                None => (rest, ""),
            },
        };
        let opt = match item.split_once('=') {
            Some((name, value)) => Opt {
                name,
                value: Some(value),
            },
            None => Opt {
                name: item,
                value: None,
            },
        };
        out.push(opt);
        rest = next;
    }
    out
}

/// Tracks which options were seen, to refuse duplicates.
struct Seen(Vec<String>);

impl Seen {
    fn first(&mut self, name: &str) -> Result<(), SpecError> {
        if self.0.iter().any(|n| n == name) {
            return Err(SpecError::Duplicate(name.to_owned()));
        }
        self.0.push(name.to_owned());
        Ok(())
    }
}

fn value<'a>(opt: &Opt<'a>) -> Result<&'a str, SpecError> {
    opt.value
        .ok_or_else(|| SpecError::MissingValue(opt.name.to_owned()))
}

fn flag(opt: &Opt<'_>) -> Result<(), SpecError> {
    match opt.value {
        None => Ok(()),
        Some(_) => Err(SpecError::UnexpectedValue(opt.name.to_owned())),
    }
}

fn parse_num<T: FromStr>(option: &'static str, text: &str) -> Result<T, SpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(option, text, "expected a decimal number"));
    }
    text.parse()
        .map_err(|_| invalid(option, text, "number out of range"))
}

fn parse_port(text: &str) -> Result<u16, SpecError> {
    let port = parse_num::<u16>("port", text)?;
    if port == 0 {
        return Err(invalid("port", text, "port 0 is not a port"));
    }
    Ok(port)
}

/// Parses hex digits, two per byte, case-insensitive.
pub(crate) fn parse_hex(option: &'static str, text: &str) -> Result<Vec<u8>, SpecError> {
    if !text.len().is_multiple_of(2) {
        return Err(invalid(
            option,
            text,
            "expected an even number of hex digits",
        ));
    }
    let digit = |b: u8| (b as char).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
            _ => Err(invalid(option, text, "expected hex digits")),
        })
        .collect()
}

/// Writes bytes as lowercase hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A duration in the text form: a number with the unit `ms` or `s`.
fn parse_duration(option: &'static str, text: &str) -> Result<u32, SpecError> {
    let (digits, scale) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1000)
    } else {
        return Err(invalid(
            option,
            text,
            "expected a duration with a unit, e.g. 500ms or 5s",
        ));
    };
    let n: u32 = parse_num(option, digits).map_err(|_| {
        invalid(
            option,
            text,
            "expected a duration with a unit, e.g. 500ms or 5s",
        )
    })?;
    n.checked_mul(scale)
        .ok_or_else(|| invalid(option, text, "duration out of range"))
}

fn fmt_duration(ms: u32) -> String {
    if ms != 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn is_token_text(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

impl Check {
    /// The check kind as written in the text form: `tcp`, `http`, `udp`
    /// or `misc`.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Tcp { .. } => "tcp",
            Check::Http { .. } => "http",
            Check::Udp { .. } => "udp",
            Check::Misc { .. } => "misc",
        }
    }

    /// The port the check connects to for a real server on `rs_port`.
    pub fn port_for(&self, rs_port: u16) -> u16 {
        match self {
            Check::Tcp { port } | Check::Http { port, .. } | Check::Udp { port, .. } => {
                port.unwrap_or(rs_port)
            }
            Check::Misc { .. } => rs_port,
        }
    }

    /// An HTTP check of `path` expecting status 200, with the other options
    /// at their defaults.
    pub fn http(path: &str) -> Check {
        Check::Http {
            port: None,
            path: path.to_owned(),
            status: 200,
            digest: None,
            host: None,
        }
    }

    /// Parses the text form (see the [module](self) documentation).
    pub fn parse(text: &str) -> Result<Check, SpecError> {
        let (kind, opts) = match text.split_once(':') {
            Some((kind, opts)) => (kind, opts),
            None => (text, ""),
        };
        let mut seen = Seen(Vec::new());
        let check = match kind {
            "tcp" => {
                let mut port = None;
                for opt in split_options(opts, None) {
                    seen.first(opt.name)?;
                    match opt.name {
                        "port" => port = Some(parse_port(value(&opt)?)?),
                        _ => return Err(unknown("tcp check", opt.name)),
                    }
                }
                Check::Tcp { port }
            }
            "http" => {
                let (mut port, mut path, mut status, mut digest, mut host) =
                    (None, default_path(), default_status(), None, None);
                for opt in split_options(opts, None) {
                    seen.first(opt.name)?;
                    match opt.name {
                        "port" => port = Some(parse_port(value(&opt)?)?),
                        "path" => path = value(&opt)?.to_owned(),
                        "status" => status = parse_num("status", value(&opt)?)?,
                        "digest" => digest = Some(value(&opt)?.to_owned()),
                        "host" => host = Some(value(&opt)?.to_owned()),
                        _ => return Err(unknown("http check", opt.name)),
                    }
                }
                Check::Http {
                    port,
                    path,
                    status,
                    digest,
                    host,
                }
            }
            "udp" => {
                let (mut port, mut payload, mut expect, mut require_reply) =
                    (None, Vec::new(), None, false);
                for opt in split_options(opts, None) {
                    seen.first(opt.name)?;
                    match opt.name {
                        "port" => port = Some(parse_port(value(&opt)?)?),
                        "payload" => payload = parse_hex("payload", value(&opt)?)?,
                        "expect" => expect = Some(parse_hex("expect", value(&opt)?)?),
                        "require-reply" => {
                            flag(&opt)?;
                            require_reply = true;
                        }
                        _ => return Err(unknown("udp check", opt.name)),
                    }
                }
                Check::Udp {
                    port,
                    payload,
                    expect,
                    require_reply,
                }
            }
            "misc" => {
                let (mut command, mut dynamic) = (None, false);
                for opt in split_options(opts, Some("cmd")) {
                    seen.first(opt.name)?;
                    match opt.name {
                        "cmd" => command = Some(value(&opt)?.to_owned()),
                        "dynamic" => {
                            flag(&opt)?;
                            dynamic = true;
                        }
                        _ => return Err(unknown("misc check", opt.name)),
                    }
                }
                let command = command.ok_or(SpecError::Required {
                    what: "misc check",
                    option: "cmd=",
                })?;
                Check::Misc { command, dynamic }
            }
            other => return Err(SpecError::UnknownKind(other.chars().take(64).collect())),
        };
        check.validate()?;
        Ok(check)
    }

    /// Checks the values: ports not 0; an HTTP path starting with `/`, a
    /// status 100..=599, a digest of 32 hex digits, a host of visible
    /// characters; UDP data no larger than a datagram; a MISC command not
    /// empty. Paths and hosts are visible ASCII without commas (a request
    /// line cannot be smuggled through them), at most [`MAX_TEXT`] bytes.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            Check::Tcp { port } => check_port(*port),
            Check::Http {
                port,
                path,
                status,
                digest,
                host,
            } => {
                check_port(*port)?;
                if !path.starts_with('/') || path.len() > MAX_TEXT || !is_token_text(path) {
                    return Err(invalid(
                        "path",
                        path,
                        "expected '/' then visible ASCII without spaces or commas",
                    ));
                }
                if !(100..=599).contains(status) {
                    return Err(invalid("status", &status.to_string(), "expected 100..=599"));
                }
                if let Some(d) = digest {
                    if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(invalid("digest", d, "expected 32 hex digits (an MD5)"));
                    }
                }
                if let Some(h) = host {
                    if h.is_empty() || h.len() > MAX_TEXT || !is_token_text(h) {
                        return Err(invalid(
                            "host",
                            h,
                            "expected visible ASCII without spaces or commas",
                        ));
                    }
                }
                Ok(())
            }
            Check::Udp {
                port,
                payload,
                expect,
                ..
            } => {
                check_port(*port)?;
                if payload.len() > MAX_UDP_PAYLOAD {
                    return Err(invalid(
                        "payload",
                        &hex(payload),
                        "larger than a UDP datagram",
                    ));
                }
                if expect.as_ref().is_some_and(|e| e.len() > MAX_UDP_PAYLOAD) {
                    return Err(invalid("expect", "", "larger than a UDP datagram"));
                }
                Ok(())
            }
            Check::Misc { command, .. } => {
                if command.trim().is_empty() || command.len() > MAX_TEXT || command.contains('\0') {
                    return Err(invalid(
                        "cmd",
                        command,
                        "expected a non-empty command without NUL bytes",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn unknown(what: &'static str, option: &str) -> SpecError {
    SpecError::UnknownOption {
        what,
        option: option.chars().take(64).collect(),
    }
}

fn check_port(port: Option<u16>) -> Result<(), SpecError> {
    match port {
        Some(0) => Err(invalid("port", "0", "port 0 is not a port")),
        _ => Ok(()),
    }
}

impl Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut opts: Vec<String> = Vec::new();
        match self {
            Check::Tcp { port } => {
                opts.extend(port.map(|p| format!("port={p}")));
            }
            Check::Http {
                port,
                path,
                status,
                digest,
                host,
            } => {
                opts.extend(port.map(|p| format!("port={p}")));
                if path != "/" {
                    opts.push(format!("path={path}"));
                }
                if *status != 200 {
                    opts.push(format!("status={status}"));
                }
                opts.extend(digest.as_ref().map(|d| format!("digest={d}")));
                opts.extend(host.as_ref().map(|h| format!("host={h}")));
            }
            Check::Udp {
                port,
                payload,
                expect,
                require_reply,
            } => {
                opts.extend(port.map(|p| format!("port={p}")));
                if !payload.is_empty() {
                    opts.push(format!("payload={}", hex(payload)));
                }
                opts.extend(expect.as_ref().map(|e| format!("expect={}", hex(e))));
                if *require_reply {
                    opts.push("require-reply".to_owned());
                }
            }
            Check::Misc { command, dynamic } => {
                if *dynamic {
                    opts.push("dynamic".to_owned());
                }
                opts.push(format!("cmd={command}"));
            }
        }
        f.write_str(self.kind())?;
        if !opts.is_empty() {
            write!(f, ":{}", opts.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for Check {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Check::parse(s)
    }
}

impl Timing {
    /// Parses the text form, e.g. `interval=2s,timeout=500ms,rise=1,fall=2,alpha`;
    /// options left out keep their [defaults](Timing::default), and the
    /// empty text is the default.
    pub fn parse(text: &str) -> Result<Timing, SpecError> {
        let mut t = Timing::default();
        let mut seen = Seen(Vec::new());
        for opt in split_options(text, None) {
            seen.first(opt.name)?;
            match opt.name {
                "interval" => t.interval_ms = parse_duration("interval", value(&opt)?)?,
                "timeout" => t.timeout_ms = parse_duration("timeout", value(&opt)?)?,
                "rise" => t.rise = parse_num("rise", value(&opt)?)?,
                "fall" => t.fall = parse_num("fall", value(&opt)?)?,
                "alpha" => {
                    flag(&opt)?;
                    t.alpha = true;
                }
                _ => return Err(unknown("timing", opt.name)),
            }
        }
        t.validate()?;
        Ok(t)
    }

    /// Checks that the interval, the timeout, `rise` and `fall` are not 0.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.interval_ms == 0 {
            return Err(invalid("interval", "0ms", "must be at least 1ms"));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("timeout", "0ms", "must be at least 1ms"));
        }
        if self.rise == 0 {
            return Err(invalid("rise", "0", "must be at least 1"));
        }
        if self.fall == 0 {
            return Err(invalid("fall", "0", "must be at least 1"));
        }
        Ok(())
    }
}

impl Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "interval={},timeout={},rise={},fall={}",
            fmt_duration(self.interval_ms),
            fmt_duration(self.timeout_ms),
            self.rise,
            self.fall
        )?;
        if self.alpha {
            f.write_str(",alpha")?;
        }
        Ok(())
    }
}

impl FromStr for Timing {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timing::parse(s)
    }
}

impl ServicePolicy {
    /// Parses the text form, e.g. `quorum=3,hysteresis=1,sorry=[2001:db8::9]:80,inhibit`;
    /// options left out keep their [defaults](ServicePolicy::default).
    pub fn parse(text: &str) -> Result<ServicePolicy, SpecError> {
        let mut p = ServicePolicy::default();
        let mut seen = Seen(Vec::new());
        for opt in split_options(text, None) {
            seen.first(opt.name)?;
            match opt.name {
                "quorum" => p.quorum = parse_num("quorum", value(&opt)?)?,
                "hysteresis" => p.hysteresis = parse_num("hysteresis", value(&opt)?)?,
                "sorry" => {
                    let v = value(&opt)?;
                    p.sorry_server = Some(v.parse().map_err(|_| {
                        invalid("sorry", v, "expected ADDRESS:PORT or [IPv6]:PORT")
                    })?);
                }
                "inhibit" => {
                    flag(&opt)?;
                    p.inhibit_on_failure = true;
                }
                _ => return Err(unknown("service policy", opt.name)),
            }
        }
        Ok(p)
    }
}

impl Display for ServicePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quorum={}", self.quorum)?;
        if self.hysteresis != 0 {
            write!(f, ",hysteresis={}", self.hysteresis)?;
        }
        if let Some(s) = self.sorry_server {
            write!(f, ",sorry={s}")?;
        }
        if self.inhibit_on_failure {
            f.write_str(",inhibit")?;
        }
        Ok(())
    }
}

impl FromStr for ServicePolicy {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServicePolicy::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_forms() {
        let cases: &[(&str, Check)] = &[
            ("tcp", Check::Tcp { port: None }),
            ("tcp:port=8080", Check::Tcp { port: Some(8080) }),
            ("http", Check::http("/")),
            (
                "http:port=81,path=/h?x=1,status=204,digest=9b3a0c85a887a256d6939da88aabd8cd,host=a.example",
                Check::Http {
                    port: Some(81),
                    path: "/h?x=1".into(),
                    status: 204,
                    digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
                    host: Some("a.example".into()),
                },
            ),
            (
                "udp:payload=0aff,expect=00,require-reply",
                Check::Udp {
                    port: None,
                    payload: vec![0x0a, 0xff],
                    expect: Some(vec![0]),
                    require_reply: true,
                },
            ),
            (
                "misc:dynamic,cmd=/bin/check --a=1,b 'c d'",
                Check::Misc {
                    command: "/bin/check --a=1,b 'c d'".into(),
                    dynamic: true,
                },
            ),
            (
                "misc:cmd=exit 0",
                Check::Misc {
                    command: "exit 0".into(),
                    dynamic: false,
                },
            ),
        ];
        for (text, check) in cases {
            assert_eq!(&Check::parse(text).unwrap(), check, "{text}");
            assert_eq!(&check.to_string(), text);
        }
    }

    #[test]
    fn check_options_any_order() {
        let a = Check::parse("http:status=500,path=/x,port=9").unwrap();
        assert_eq!(a.to_string(), "http:port=9,path=/x,status=500");
        assert_eq!(
            Check::parse("udp:payload=0A").unwrap().to_string(),
            "udp:payload=0a"
        );
    }

    #[test]
    fn check_errors() {
        let cases: &[(&str, &str)] = &[
            ("icmp", "unknown check kind 'icmp'"),
            ("tcp:port=0", "port 0 is not a port"),
            ("tcp:port=70000", "number out of range"),
            ("tcp:port", "option 'port' needs a value"),
            ("tcp:port=1,port=2", "option 'port' given twice"),
            ("tcp:path=/", "unknown option 'path' for tcp check"),
            ("http:path=x", "expected '/'"),
            ("http:path=/a b", "expected '/'"),
            ("http:status=99", "expected 100..=599"),
            ("http:digest=abc", "32 hex digits"),
            ("udp:payload=abc", "even number"),
            ("udp:payload=zz", "hex digits"),
            ("udp:require-reply=yes", "takes no value"),
            ("misc:dynamic", "misc check needs cmd="),
            ("misc:cmd=", "non-empty command"),
            ("misc:cmd= ", "non-empty command"),
        ];
        for (text, want) in cases {
            let err = Check::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn timing_forms() {
        assert_eq!(Timing::parse("").unwrap(), Timing::default());
        assert_eq!(
            Timing::default().to_string(),
            "interval=5s,timeout=3s,rise=2,fall=3"
        );
        let t = Timing::parse("alpha,fall=1,interval=1500ms,timeout=1s").unwrap();
        assert_eq!(
            t,
            Timing {
                interval_ms: 1500,
                timeout_ms: 1000,
                rise: 2,
                fall: 1,
                alpha: true
            }
        );
        assert_eq!(
            t.to_string(),
            "interval=1500ms,timeout=1s,rise=2,fall=1,alpha"
        );
        for (text, want) in [
            ("interval=5", "with a unit"),
            ("interval=0s", "at least 1ms"),
            ("timeout=5000000s", "out of range"),
            ("rise=0", "at least 1"),
            ("fall=-1", "decimal number"),
            ("inter=5s", "unknown option"),
        ] {
            let err = Timing::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn policy_forms() {
        assert_eq!(ServicePolicy::parse("").unwrap(), ServicePolicy::default());
        assert_eq!(ServicePolicy::default().to_string(), "quorum=1");
        let p =
            ServicePolicy::parse("inhibit,sorry=[2001:db8::9]:80,quorum=3,hysteresis=1").unwrap();
        assert_eq!(p.sorry_server, Some("[2001:db8::9]:80".parse().unwrap()));
        assert_eq!(
            p.to_string(),
            "quorum=3,hysteresis=1,sorry=[2001:db8::9]:80,inhibit"
        );
        let err = ServicePolicy::parse("sorry=10.0.0.1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ADDRESS:PORT"), "{err}");
    }

    #[test]
    fn serde_forms() {
        let c: Check = serde_json::from_str(r#"{"kind":"http","path":"/x"}"#).unwrap();
        assert_eq!(c, Check::http("/x"));
        let t: Timing = serde_json::from_str(r#"{"rise":5}"#).unwrap();
        assert_eq!(
            t,
            Timing {
                rise: 5,
                ..Timing::default()
            }
        );
        let p: ServicePolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, ServicePolicy::default());
        for c in [
            Check::Tcp { port: Some(1) },
            Check::Udp {
                port: None,
                payload: vec![1, 2],
                expect: None,
                require_reply: true,
            },
            Check::Misc {
                command: "true".into(),
                dynamic: true,
            },
        ] {
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Check>(&j).unwrap(), c, "{j}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn token() -> impl Strategy<Value = String> {
            "[!-+\\--~]{1,20}"
        }

        fn check() -> impl Strategy<Value = Check> {
            let port = proptest::option::of(1u16..);
            prop_oneof![
                port.clone().prop_map(|port| Check::Tcp { port }),
                (
                    port.clone(),
                    token(),
                    100u16..600,
                    proptest::option::of("[0-9a-f]{32}"),
                    proptest::option::of(token())
                )
                    .prop_map(|(port, p, status, digest, host)| Check::Http {
                        port,
                        path: format!("/{p}"),
                        status,
                        digest,
                        host
                    }),
                (
                    port,
                    proptest::collection::vec(any::<u8>(), 0..16),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
                    any::<bool>()
                )
                    .prop_map(|(port, payload, expect, require_reply)| {
                        Check::Udp {
                            port,
                            payload,
                            expect,
                            require_reply,
                        }
                    }),
                ("[ -~]{0,40}[!-~]", any::<bool>())
                    .prop_map(|(command, dynamic)| Check::Misc { command, dynamic }),
            ]
        }

        proptest! {
            #[test]
            fn check_round_trip(c in check()) {
                prop_assert!(c.validate().is_ok());
                prop_assert_eq!(Check::parse(&c.to_string()), Ok(c));
            }

            #[test]
            fn timing_round_trip(
                interval_ms in 1u32.., timeout_ms in 1u32.., rise in 1u16.., fall in 1u16..,
                alpha in any::<bool>()
            ) {
                let t = Timing { interval_ms, timeout_ms, rise, fall, alpha };
                prop_assert_eq!(Timing::parse(&t.to_string()), Ok(t));
            }

            #[test]
            fn policy_round_trip(
                quorum in any::<u32>(), hysteresis in any::<u32>(),
                sorry in proptest::option::of((any::<std::net::IpAddr>(), any::<u16>())),
                inhibit_on_failure in any::<bool>()
            ) {
                let sorry_server = sorry.map(|(ip, port)| SocketAddr::new(ip, port));
                let p = ServicePolicy { quorum, hysteresis, sorry_server, inhibit_on_failure };
                prop_assert_eq!(ServicePolicy::parse(&p.to_string()), Ok(p));
            }

            #[test]
            fn parse_never_panics(text in "\\PC{0,60}") {
                let _ = Check::parse(&text);
                let _ = Timing::parse(&text);
                let _ = ServicePolicy::parse(&text);
            }
        }
    }
}

impl Feedback {
    /// Parses the text form `port=9100,path=/load,host=H` (every option
    /// optional; the path defaults to `/`).
    pub fn parse(text: &str) -> Result<Feedback, SpecError> {
        let mut fb = Feedback {
            port: None,
            path: default_path(),
            host: None,
        };
        let mut seen = Seen(Vec::new());
        for opt in split_options(text, None) {
            seen.first(opt.name)?;
            match opt.name {
                "port" => fb.port = Some(parse_port(value(&opt)?)?),
                "path" => fb.path = value(&opt)?.to_owned(),
                "host" => fb.host = Some(value(&opt)?.to_owned()),
                _ => return Err(unknown("feedback", opt.name)),
            }
        }
        fb.validate()?;
        Ok(fb)
    }

    /// Checks the values with an HTTP check's rules: the port not 0, the
    /// path starting with `/`, path and host visible ASCII without commas.
    pub fn validate(&self) -> Result<(), SpecError> {
        Check::Http {
            port: self.port,
            path: self.path.clone(),
            status: default_status(),
            digest: None,
            host: self.host.clone(),
        }
        .validate()
    }
}

impl Display for Feedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.port {
            write!(f, "port={p},")?;
        }
        write!(f, "path={}", self.path)?;
        if let Some(h) = &self.host {
            write!(f, ",host={h}")?;
        }
        Ok(())
    }
}

impl FromStr for Feedback {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Feedback::parse(s)
    }
}

#[cfg(test)]
mod feedback_tests {
    use super::*;

    #[test]
    fn feedback_text_form_round_trips() {
        for text in ["path=/", "port=9100,path=/load", "path=/l,host=rs1.example"] {
            let fb = Feedback::parse(text).unwrap();
            assert_eq!(fb.to_string(), text);
            assert_eq!(Feedback::parse(&fb.to_string()).unwrap(), fb);
        }
        assert_eq!(Feedback::parse("").unwrap().path, "/");
        assert!(
            Feedback::parse("path=load").is_err(),
            "a path starts with /"
        );
        assert!(Feedback::parse("port=0").is_err());
        assert!(Feedback::parse("path=/a,path=/b").is_err());
        assert!(Feedback::parse("interval=5s").is_err());
    }
}
