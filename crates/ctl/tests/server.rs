//! Robustness of the control socket server: hostile or broken clients get
//! an error line or are dropped, and the server keeps serving others.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xvs_ctl::client::Client;
use xvs_ctl::model::Model;
use xvs_ctl::proto::{Request, Response};
use xvs_ctl::server::{Access, Handler, Server, ServerConfig, ServerError};
use xvs_ctl::{Command, parse_args};

struct ModelHandler(Mutex<Model>);

impl Handler for ModelHandler {
    fn handle(&self, req: Request) -> Response {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match req {
            Request::Apply { commands, dry_run } => {
                // A test hook: `-Z -t 192.0.2.66:66` makes the handler panic.
                if commands
                    .iter()
                    .any(|c| c.to_string() == "-Z -t 192.0.2.66:66")
                {
                    panic!("handler bug");
                }
                match m.apply_batch(&commands, dry_run) {
                    Ok(()) => Response::Ok,
                    Err((i, message)) => Response::Error {
                        index: Some(i),
                        message,
                    },
                }
            }
            Request::GetState { .. } => Response::State(m.state.clone()),
            _ => Response::error("not supported yet"),
        }
    }
}

fn temp_sock() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xvs-srv-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    dir.join("xvsd.sock")
}

fn start(f: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut cfg = ServerConfig::new(temp_sock());
    cfg.timeout = Duration::from_millis(500);
    f(&mut cfg);
    Server::start(cfg, Arc::new(ModelHandler(Mutex::new(Model::new())))).unwrap()
}

fn cmd(s: &str) -> Command {
    parse_args(&s.split_whitespace().collect::<Vec<_>>()).unwrap()
}

fn ping(server: &Server) {
    let t = Instant::now();
    let mut c = Client::connect(server.path()).unwrap();
    assert_eq!(c.call(&Request::Ping).unwrap(), Response::Ok);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "ping took {:?}",
        t.elapsed()
    );
}

/// Reads one response line from a raw stream.
fn read_line(s: &UnixStream) -> String {
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

fn error_message(line: &str) -> String {
    match xvs_ctl::proto::decode_response(line.as_bytes()) {
        Ok(Response::Error { message, .. }) => message,
        other => panic!("not an error: {other:?} from {line:?}"),
    }
}

#[test]
fn serves_requests_and_applies_batches_atomically() {
    let server = start(|_| {});
    let mut c = Client::connect(server.path()).unwrap();
    let ok = c
        .call(&Request::Apply {
            commands: vec![
                cmd("-A -t 192.0.2.1:80"),
                cmd("-a -t 192.0.2.1:80 -r 10.0.0.2"),
            ],
            dry_run: false,
        })
        .unwrap();
    assert_eq!(ok, Response::Ok);
    // Same connection, second request: a failing batch changes nothing.
    let err = c
        .call(&Request::Apply {
            commands: vec![cmd("-C"), cmd("-d -t 192.0.2.1:80 -r 10.0.0.9")],
            dry_run: false,
        })
        .unwrap();
    assert_eq!(
        err,
        Response::Error {
            index: Some(1),
            message: "Service not defined".into()
        }
    );
    let Response::State(st) = c.call(&Request::GetState { service: None }).unwrap() else {
        panic!()
    };
    assert_eq!(st.services.len(), 1);
    assert_eq!(st.services[0].dests.len(), 1);
}

#[test]
fn invalid_commands_never_reach_the_handler() {
    let server = start(|_| {});
    let mut c = Client::connect(server.path()).unwrap();
    let mut bad = cmd("-a -t 192.0.2.1:80 -r 10.0.0.2");
    if let Command::AddDest { dest, .. } = &mut bad {
        dest.weight = 70_000;
    }
    let r = c
        .call(&Request::Apply {
            commands: vec![cmd("-C"), bad],
            dry_run: false,
        })
        .unwrap();
    assert!(
        matches!(&r, Response::Error { index: Some(1), message } if message.contains("weight")),
        "{r:?}"
    );
    let r = c
        .call(&Request::Apply {
            commands: vec![cmd("-L -n")],
            dry_run: false,
        })
        .unwrap();
    assert!(matches!(r, Response::Error { index: Some(0), .. }), "{r:?}");
}

#[test]
fn oversized_request_gets_an_error_and_others_are_served() {
    let server = start(|c| c.max_request = 4096);
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Write more than the limit, no newline; ignore the broken pipe when
    // the server hangs up.
    let _ = s.write_all(&vec![b'x'; 64 * 1024]);
    let line = read_line(&s);
    assert!(error_message(&line).contains("too large"), "{line}");
    ping(&server);
}

#[test]
fn garbage_gets_an_error_and_others_are_served() {
    let server = start(|_| {});
    for garbage in [
        &b"\x00\xff\xfe garbage\n"[..],
        b"{\"v\":1,\"req\":{\"apply\":{\"commands\":[{\"add_service\":{}}]}}}\n",
        b"[1,2,3]\n",
        b"{\"v\":99,\"req\":\"ping\"}\n",
    ] {
        let mut s = UnixStream::connect(server.path()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(garbage).unwrap();
        let line = read_line(&s);
        let msg = error_message(&line);
        assert!(!msg.is_empty());
        // The connection is closed after a bad request.
        assert_eq!(read_line(&s), "");
    }
    ping(&server);
}

#[test]
fn slow_client_does_not_hold_others_and_times_out() {
    let server = start(|_| {});
    let mut slow = UnixStream::connect(server.path()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slow.write_all(b"{\"v\":1,\"req\":").unwrap();
    // Others are served while it stalls.
    for _ in 0..3 {
        ping(&server);
    }
    let t = Instant::now();
    let line = read_line(&slow);
    assert!(error_message(&line).contains("timed out"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // An idle connection (no partial request) is simply closed.
    let idle = UnixStream::connect(server.path()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_line(&idle), "");
    ping(&server);
}

#[test]
fn client_count_is_bounded() {
    let server = start(|c| {
        c.max_clients = 1;
        c.timeout = Duration::from_secs(2);
    });
    let mut first = Client::connect(server.path()).unwrap();
    assert_eq!(first.call(&Request::Ping).unwrap(), Response::Ok);
    // `first` is still connected: a second client is turned away.
    let mut second = Client::connect(server.path()).unwrap();
    let r = second.call(&Request::Ping).unwrap();
    assert!(
        matches!(&r, Response::Error { message, .. } if message.contains("too many")),
        "{r:?}"
    );
    drop(first);
    // Once it is gone, there is room again.
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.active_clients() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    ping(&server);
}

#[test]
fn wrong_peer_is_refused() {
    let server = start(|c| {
        c.access = Some(Access {
            uids: vec![u32::MAX - 1],
            gid: Some(u32::MAX - 1),
        })
    });
    let mut c = Client::connect(server.path()).unwrap();
    let r = c.call(&Request::Ping).unwrap();
    assert!(
        matches!(&r, Response::Error { message, .. } if message.starts_with("Permission denied")),
        "{r:?}"
    );
}

#[test]
fn handler_panic_is_an_error_not_a_crash() {
    let server = start(|_| {});
    let mut c = Client::connect(server.path()).unwrap();
    let r = c
        .call(&Request::Apply {
            commands: vec![cmd("-Z -t 192.0.2.66:66")],
            dry_run: false,
        })
        .unwrap();
    assert!(matches!(&r, Response::Error { message, .. } if message.contains("internal")));
    ping(&server);
    let r = c.call(&Request::GetState { service: None }).unwrap();
    assert!(matches!(r, Response::State(_)));
}

#[test]
fn socket_file_life_cycle() {
    let server = start(|_| {});
    let path = server.path().to_owned();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660);
    // A second daemon on the same socket is refused.
    let again = Server::start(
        ServerConfig::new(&path),
        Arc::new(ModelHandler(Mutex::new(Model::new()))),
    );
    assert!(
        matches!(again, Err(ServerError::AlreadyRunning(_))),
        "{again:?}"
    );
    server.shutdown();
    assert!(!path.exists());

    // A stale socket (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = start(|c| c.path = path.clone());
    ping(&server);
    drop(server);
    assert!(!path.exists());

    // A regular file is left alone.
    std::fs::write(&path, "not a socket").unwrap();
    let r = Server::start(
        ServerConfig::new(&path),
        Arc::new(ModelHandler(Mutex::new(Model::new()))),
    );
    assert!(matches!(r, Err(ServerError::NotASocket(_))), "{r:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
