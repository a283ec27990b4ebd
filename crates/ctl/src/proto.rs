//! The admin protocol between `xvsadm` (or any script) and `xvsd`: JSON
//! lines over a Unix stream socket.
//!
//! Each request is one JSON object on one line (at most
//! [`MAX_REQUEST`] bytes with its newline), answered by one JSON object on
//! one line; a connection may carry several requests in turn. Both are
//! wrapped in a versioned envelope:
//!
//! ```text
//! -> {"v":1,"req":{"apply":{"commands":[{"del_service":{"svc":{"tuple":{"proto":"tcp","addr":"192.0.2.1","port":80}}}}],"dry_run":false}}}
//! <- {"v":1,"resp":{"error":{"index":0,"message":"No such service"}}}
//! -> {"v":1,"req":"get_timeouts"}
//! <- {"v":1,"resp":{"timeouts":{"tcp":900,"tcpfin":120,"udp":300}}}
//! ```
//!
//! A request with another `v` is answered with [`Response::Error`] naming
//! the version the daemon speaks. Changes go through [`Request::Apply`]
//! only, as a list of [`Command`]s applied all or nothing.
//!
//! ```
//! use xvs_ctl::proto::{Request, Response, decode_request, encode_request};
//!
//! let line = encode_request(&Request::GetTimeouts);
//! assert!(line.ends_with('\n'));
//! assert_eq!(decode_request(line.as_bytes()), Ok(Request::GetTimeouts));
//! assert!(matches!(decode_request(b"garbage\n"), Err(Response::Error { .. })));
//! ```

use serde::{Deserialize, Serialize};

use crate::cmd::{Command, SvcKey};
use crate::state::{Conn, Counters, State, SyncDaemon, Timeouts};

/// Version of the protocol this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest request line, newline included (1 MiB: a restore of some
/// thousands of services).
pub const MAX_REQUEST: usize = 1 << 20;

/// Largest response line a client accepts (a connection table listing can
/// be large).
pub const MAX_RESPONSE: usize = 1 << 30;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Is a daemon there? Answered [`Response::Ok`] by the server itself,
    /// without calling the handler.
    Ping,
    /// The daemon's version: [`Response::Version`].
    Version,
    /// Apply these change commands in order, all or nothing: if one fails,
    /// none has any effect, and the answer is [`Response::Error`] with the
    /// index of the failing command. With `dry_run`, check them against
    /// the current state the same way and change nothing. Answered
    /// [`Response::Ok`] on success. Every command is one for which
    /// [`Command::is_change`] holds and [`Command::validate`] passes (the
    /// server checks both before the handler sees the request): `-A -E -D
    /// -C -a -e -d -Z --set --start-daemon --stop-daemon`.
    Apply {
        /// The batch (one command for a plain `xvsadm -a ...`, the whole
        /// input for `-R`).
        commands: Vec<Command>,
        /// Check only.
        dry_run: bool,
    },
    /// Services, real servers, counters, rates, timeouts and daemons:
    /// [`Response::State`]. With `service`, only that service (error "No
    /// such service" if it does not exist).
    GetState {
        /// One service only.
        service: Option<SvcKey>,
    },
    /// The connection table (`-L -c`): [`Response::Connections`].
    GetConnections,
    /// The connection timeouts (`-L --timeout`): [`Response::Timeouts`].
    GetTimeouts,
    /// The sync daemons (`-L --daemon`): [`Response::Daemons`].
    GetDaemons,
    /// The data plane's own counters (xvs; IPVS keeps none of these per
    /// reason): what the workers did with every frame, what the XDP
    /// program did, the connection table's occupancy:
    /// [`Response::Counters`].
    GetCounters,
}

/// What the daemon answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Done (or, for a dry run, would be done).
    Ok,
    /// The answer to [`Request::Version`].
    Version {
        /// The daemon's name and version, e.g. `xvsd 0.1.0`.
        daemon: String,
        /// [`PROTOCOL_VERSION`] of the daemon.
        protocol: u32,
    },
    /// The answer to [`Request::GetState`].
    State(State),
    /// The answer to [`Request::GetConnections`].
    Connections(Vec<Conn>),
    /// The answer to [`Request::GetTimeouts`].
    Timeouts(Timeouts),
    /// The answer to [`Request::GetDaemons`].
    Daemons(Vec<SyncDaemon>),
    /// The answer to [`Request::GetCounters`] (boxed: it is the largest
    /// answer by far, and every `Result<_, Response>` would carry its size).
    Counters(Box<Counters>),
    /// The request failed; nothing changed.
    Error {
        /// For [`Request::Apply`]: the 0-based index in `commands` of the
        /// command that failed; `None` for errors of the whole request.
        index: Option<usize>,
        /// One line, as ipvsadm words it where it has a word for it
        /// (`Service already exists`, `No such service`, `Service not
        /// defined`, `Destination already exists`, `No such destination`,
        /// `Memory allocation problem`...).
        message: String,
    },
}

impl Response {
    /// An error of the whole request.
    pub fn error(message: impl Into<String>) -> Response {
        Response::Error {
            index: None,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    #[serde(rename = "req", skip_serializing_if = "Option::is_none")]
    req: Option<&'a T>,
    #[serde(rename = "resp", skip_serializing_if = "Option::is_none")]
    resp: Option<&'a T>,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

#[derive(Deserialize)]
struct RequestIn {
    req: Request,
}

#[derive(Deserialize)]
struct ResponseIn {
    v: u32,
    resp: Response,
}

fn line<T: Serialize>(value: &T, is_req: bool) -> String {
    let env = EnvelopeOut {
        v: PROTOCOL_VERSION,
        req: is_req.then_some(value),
        resp: (!is_req).then_some(value),
    };
    // These types always serialise (no non-string map keys, no failing
    // Serialize impl); fall back to an error line rather than panic.
    let mut s = serde_json::to_string(&env).unwrap_or_else(|e| {
        format!(
            r#"{{"v":{PROTOCOL_VERSION},"resp":{{"error":{{"index":null,"message":"cannot encode: {}"}}}}}}"#,
            e.to_string().replace(['"', '\\'], "'")
        )
    });
    s.push('\n');
    s
}

/// A request as one line, newline included.
pub fn encode_request(req: &Request) -> String {
    line(req, true)
}

/// A response as one line, newline included.
pub fn encode_response(resp: &Response) -> String {
    line(resp, false)
}

/// Reads one request line (with or without its newline). On failure,
/// gives the [`Response::Error`] to send back: not UTF-8 or not JSON
/// ("bad request: ..."), another protocol version, an unknown request.
pub fn decode_request(bytes: &[u8]) -> Result<Request, Response> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Response::error("bad request: not UTF-8 text"))?;
    let text = text.trim_end_matches(['\n', '\r']);
    let v: VersionOnly = serde_json::from_str(text)
        .map_err(|e| Response::error(format!("bad request: {}", one_line(&e.to_string()))))?;
    if v.v != PROTOCOL_VERSION {
        return Err(Response::error(format!(
            "protocol version {} not supported (the daemon speaks {PROTOCOL_VERSION})",
            v.v
        )));
    }
    serde_json::from_str::<RequestIn>(text)
        .map(|r| r.req)
        .map_err(|e| Response::error(format!("bad request: {}", one_line(&e.to_string()))))
}

/// Reads one response line. On failure, a one-line description.
pub fn decode_response(bytes: &[u8]) -> Result<Response, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "bad response: not UTF-8".to_owned())?;
    let r: ResponseIn = serde_json::from_str(text.trim_end_matches(['\n', '\r']))
        .map_err(|e| format!("bad response from the daemon: {}", one_line(&e.to_string())))?;
    if r.v != PROTOCOL_VERSION {
        return Err(format!(
            "the daemon speaks protocol version {}, xvsadm {PROTOCOL_VERSION}",
            r.v
        ));
    }
    Ok(r.resp)
}

/// `s` on one line (control characters replaced by blanks), so that an
/// error message never breaks the line framing or a terminal.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_args;
    use crate::state::{Dest, Service};

    #[test]
    fn requests_round_trip() {
        let cmds = vec![
            parse_args(&["-A", "-t", "192.0.2.1:80", "-s", "rr", "-p"]).unwrap(),
            parse_args(&[
                "-a",
                "-t",
                "192.0.2.1:80",
                "-r",
                "10.0.0.2",
                "-m",
                "-w",
                "3",
            ])
            .unwrap(),
            parse_args(&["-Z"]).unwrap(),
            parse_args(&["--set", "1", "2", "3"]).unwrap(),
            parse_args(&["--start-daemon", "master"]).unwrap(),
        ];
        let svc = match &cmds[0] {
            Command::AddService { svc, .. } => *svc,
            _ => unreachable!(),
        };
        for req in [
            Request::Ping,
            Request::Version,
            Request::Apply {
                commands: cmds,
                dry_run: true,
            },
            Request::GetState { service: None },
            Request::GetState { service: Some(svc) },
            Request::GetConnections,
            Request::GetTimeouts,
            Request::GetDaemons,
            Request::GetCounters,
        ] {
            let l = encode_request(&req);
            assert_eq!(l.matches('\n').count(), 1, "{l}");
            assert_eq!(decode_request(l.as_bytes()), Ok(req));
        }
    }

    #[test]
    fn responses_round_trip() {
        let mut st = State::default();
        let mut s = Service::new(
            SvcKey::Fwmark {
                mark: 1,
                af: xvs_conntrack::Af::V6,
            },
            Default::default(),
        );
        s.dests.push(Dest::new(crate::DestOpts::new(
            "2001:db8::1".parse().unwrap(),
            0,
        )));
        st.services.push(s);
        for resp in [
            Response::Ok,
            Response::Version {
                daemon: "xvsd 0.1.0".into(),
                protocol: 1,
            },
            Response::State(st),
            Response::Connections(vec![]),
            Response::Timeouts(Timeouts::default()),
            Response::Daemons(vec![]),
            Response::Counters(Box::new(Counters {
                rx: 10,
                tx: 7,
                dropped: [("truncated_tcp".to_owned(), 3)].into(),
                ..Counters::default()
            })),
            Response::Error {
                index: Some(3),
                message: "Destination already exists".into(),
            },
        ] {
            let l = encode_response(&resp);
            assert_eq!(l.matches('\n').count(), 1, "{l}");
            assert_eq!(decode_response(l.as_bytes()), Ok(resp));
        }
    }

    #[test]
    fn bad_input_is_an_error_response() {
        let err = |b: &[u8]| match decode_request(b) {
            Err(Response::Error {
                index: None,
                message,
            }) => message,
            other => panic!("{other:?}"),
        };
        assert!(err(b"\xff\xfe\n").contains("not UTF-8"));
        assert!(err(b"hello\n").starts_with("bad request"));
        assert!(err(b"{\"v\":1}\n").starts_with("bad request"));
        assert!(err(b"{\"v\":1,\"req\":\"reboot\"}\n").starts_with("bad request"));
        assert!(err(b"{\"v\":2,\"req\":\"ping\"}\n").contains("version 2"));
        assert!(!err(b"{\"v\":1,\"req\":\"x\n\"}").contains('\n'));
        assert_eq!(
            decode_request(b"{\"v\":1,\"req\":\"ping\"}"),
            Ok(Request::Ping)
        );
        assert!(decode_response(b"{}").is_err());
    }

    /// Found by the `admin_proto` fuzz target: a real server's health
    /// check, timing and feedback came through JSON unchecked (a timing
    /// with `fall` 0, which `--check-timing` refuses), so `to_args` gave a
    /// command line `parse_args` refused. Through JSON any value can come:
    /// `validate`, which the server runs on every applied command, checks
    /// them as their parsers do, a request line smuggled into an HTTP
    /// check's path included.
    #[test]
    fn applied_health_values_are_validated() {
        let apply = |check: &str, feedback: &str| {
            let line = format!(
                r#"{{"v":1,"req":{{"apply":{{"commands":[{{"add_dest":{{"svc":{{"tuple":{{"proto":"tcp","addr":"192.0.2.1","port":80}}}},"dest":{{"addr":"10.0.0.2","port":80,"fwd":"route","weight":3,"upper":0,"lower":0,"tun_type":"ipip","tun_csum":"no_csum"{check}{feedback}}}}}}}],"dry_run":false}}}}}}"#
            );
            match decode_request(line.as_bytes()) {
                Ok(Request::Apply { commands, .. }) => commands[0].validate(),
                other => panic!("{line}: {other:?}"),
            }
        };
        let http = |path: &str, timing: &str| {
            format!(
                r#","check":{{"on":{{"check":{{"kind":"http","port":null,"path":"{path}","status":200,"digest":null,"host":null}},"timing":{{"interval_ms":5000,"timeout_ms":3000,{timing},"alpha":false}}}}}}"#
            )
        };
        let fine = http("/healthz", r#""rise":2,"fall":3"#);
        assert_eq!(apply(&fine, ""), Ok(()));
        assert_eq!(
            apply(&fine, r#","feedback":{"port":9100,"path":"/load"}"#),
            Ok(())
        );
        let refused = [
            // The fuzzer's input, reduced.
            (http("/healthz", r#""rise":2,"fall":0"#), String::new()),
            (http("/healthz", r#""rise":0,"fall":3"#), String::new()),
            (
                http(r"/ HTTP/1.0\r\nX-Smuggled: 1\r\n", r#""rise":2,"fall":3"#),
                String::new(),
            ),
            (
                r#","check":{"on":{"check":{"kind":"misc","command":" ","dynamic":false},"timing":{"interval_ms":1,"timeout_ms":1,"rise":1,"fall":1,"alpha":false}}}"#.to_owned(),
                String::new(),
            ),
            (fine.clone(), r#","feedback":{"port":0,"path":"/load"}"#.to_owned()),
            (fine.clone(), r#","feedback":{"port":null,"path":"load"}"#.to_owned()),
        ];
        for (check, feedback) in refused {
            let r = apply(&check, &feedback);
            assert!(
                matches!(r, Err(crate::GrammarError::InvalidValue { .. })),
                "{check} {feedback}: {r:?}"
            );
        }
    }
}
