//! End to end: the real `xvsadm` binary against an in-process server whose
//! handler applies commands to a [`Model`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::sync::{Arc, Mutex};

use xvs_ctl::model::Model;
use xvs_ctl::proto::{PROTOCOL_VERSION, Request, Response};
use xvs_ctl::server::{Handler, Server, ServerConfig};

struct ModelHandler(Mutex<Model>);

impl Handler for ModelHandler {
    fn handle(&self, req: Request) -> Response {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match req {
            Request::Apply { commands, dry_run } => match m.apply_batch(&commands, dry_run) {
                Ok(()) => Response::Ok,
                Err((i, message)) => Response::Error {
                    index: Some(i),
                    message,
                },
            },
            Request::GetState { service: Some(k) } if m.state.service(&k).is_none() => {
                Response::error("No such service")
            }
            Request::GetState { .. } => Response::State(m.state.clone()),
            Request::GetTimeouts => Response::Timeouts(m.state.timeouts),
            Request::GetDaemons => Response::Daemons(m.state.daemons.clone()),
            Request::GetConnections => Response::Connections(Vec::new()),
            Request::GetCounters => Response::Counters(Default::default()),
            Request::Version => Response::Version {
                daemon: "test".into(),
                protocol: PROTOCOL_VERSION,
            },
            Request::Ping => Response::Ok,
        }
    }
}

fn start() -> Server {
    let dir = std::env::temp_dir().join(format!("xvs-adm-{}", std::process::id()));
    Server::start(
        ServerConfig::new(dir.join("xvsd.sock")),
        Arc::new(ModelHandler(Mutex::new(Model::new()))),
    )
    .unwrap()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn xvsadm(sock: &Path, args: &str, stdin: &str) -> Out {
    let mut p = Proc::new(env!("CARGO_BIN_EXE_xvsadm"))
        .arg("--socket")
        .arg(sock)
        .args(args.split_whitespace())
        .env_remove("XVS_SOCKET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

#[track_caller]
fn ok(sock: &Path, args: &str) -> String {
    let o = xvsadm(sock, args, "");
    assert_eq!(o.code, 0, "xvsadm {args}: {}", o.stderr);
    assert_eq!(o.stderr, "");
    o.stdout
}

#[track_caller]
fn err(sock: &Path, args: &str, stdin: &str, code: i32) -> String {
    let o = xvsadm(sock, args, stdin);
    assert_eq!(o.code, code, "xvsadm {args}: {} {}", o.stdout, o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "one line: {:?}", o.stderr);
    o.stderr.trim_end().to_owned()
}

#[test]
fn seed_session_and_save_restore_round_trip() {
    let server = start();
    let s: PathBuf = server.path().to_owned();
    ok(&s, "-A -t 192.0.2.1:80 -s rr");
    ok(&s, "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -m");
    ok(&s, "-a -t 192.0.2.1:80 -r 10.0.0.3:80 -m -w 2 -x 100 -y 10");
    ok(
        &s,
        "-A -u 192.0.2.1:53 -s sh -b sh-port -p 60 -M 255.255.255.0",
    );
    ok(&s, "-a -u 192.0.2.1:53 -r 10.0.0.4");
    ok(&s, "-A -f 7 -6 -s mh");
    ok(
        &s,
        "-a -f 7 -6 -r 2001:db8::5 -i --tun-type gue --tun-port 6080 --tun-csum",
    );
    ok(&s, "--set 600 60 200");
    // The seed's session: drain one server, remove it, add it back.
    ok(&s, "-e -t 192.0.2.1:80 -r 10.0.0.2:80 -m -w 0");
    // Expected text from ipvsadm's formats: "%s %s" service lines,
    // "  -> %-28s %-7s %-6d %-10u %-10u" real servers.
    let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.1:80 rr
  -> 10.0.0.2:80                  Masq    0      0          0         
  -> 10.0.0.3:80                  Masq    2      0          0         
UDP  192.0.2.1:53 sh (sh-port) persistent 60 mask 255.255.255.0
  -> 10.0.0.4:53                  Route   1      0          0         
FWM  7 IPv6 mh
  -> [2001:db8::5]:0              Tunnel  1      0          0         
";
    assert_eq!(ok(&s, "-L -n"), want);
    assert_eq!(ok(&s, "-l -n"), want);
    assert!(ok(&s, "-l --stats").contains("Conns   InPkts  OutPkts  InBytes OutBytes"));
    ok(&s, "-d -t 192.0.2.1:80 -r 10.0.0.2:80");
    ok(&s, "-a -t 192.0.2.1:80 -r 10.0.0.2:80 -m");
    assert_eq!(
        ok(&s, "-L --timeout"),
        "Timeout (tcp tcpfin udp): 600 60 200\n"
    );
    assert_eq!(ok(&s, "-L --daemon"), "");
    assert_eq!(
        ok(&s, "-L -n -c"),
        "IPVS connection entries\npro expire state       source             virtual            destination\n"
    );
    let saved = ok(&s, "-S -n");
    assert_eq!(
        saved,
        "\
-A -t 192.0.2.1:80 -s rr
-a -t 192.0.2.1:80 -r 10.0.0.2:80 -m -w 1
-a -t 192.0.2.1:80 -r 10.0.0.3:80 -m -w 2 -x 100 -y 10
-A -u 192.0.2.1:53 -s sh -p 60 -M 255.255.255.0 -b sh-port
-a -u 192.0.2.1:53 -r 10.0.0.4:53 -g -w 1
-A -f 7 -6 -s mh
-a -f 7 -6 -r [2001:db8::5]:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
--set 600 60 200
"
    );
    // xvsadm -S | xvsadm -C; xvsadm -R
    ok(&s, "-C");
    ok(&s, "--set 900 120 300");
    assert_eq!(
        ok(&s, "-L -n"),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
    let o = xvsadm(&s, "-R", &saved);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(ok(&s, "-S -n"), saved);

    // -R is all or nothing; the error names the input line.
    let bad =
        "ipvsadm -C\n# comment\n\nipvsadm -A -t 192.0.2.9:80\n-a -t 192.0.2.8:80 -r 10.0.0.1\n";
    assert_eq!(err(&s, "-R", bad, 2), "line 5: Service not defined");
    assert_eq!(ok(&s, "-S -n"), saved);
    assert_eq!(
        err(&s, "-R", "-C\n-A -t 192.0.2.9:80 -s nosuch\n", 2),
        format!(
            "line 2: {}",
            xvs_ctl::parse_args(&["-A", "-t", "1.2.3.4:80", "-s", "nosuch"]).unwrap_err()
        )
    );
    assert_eq!(ok(&s, "-S -n"), saved);
    // Dry runs check against the state and change nothing.
    assert_eq!(
        ok(&s, "-D -t 192.0.2.1:80 --dry-run"),
        "dry run: 1 command would be applied\n"
    );
    assert_eq!(
        err(&s, "-D -t 192.0.2.7:80 --dry-run", "", 2),
        "No such service"
    );
    assert_eq!(ok(&s, "-S -n"), saved);

    // JSON for scripts.
    let json = ok(&s, "-L -n --json");
    let st: xvs_ctl::state::State = serde_json::from_str(&json).unwrap();
    assert_eq!(st.services.len(), 3);
}

#[test]
fn errors_are_one_line_with_ipvsadms_status() {
    let server = start_named("err");
    let s = server.path().to_owned();
    ok(&s, "-A -t 192.0.2.1:80");
    ok(&s, "-a -t 192.0.2.1:80 -r 10.0.0.2");
    assert_eq!(
        err(&s, "-A -t 192.0.2.1:80", "", 2),
        "Service already exists"
    );
    assert_eq!(
        err(&s, "-a -t 192.0.2.1:80 -r 10.0.0.2", "", 2),
        "Destination already exists"
    );
    assert_eq!(err(&s, "-D -t 192.0.2.2:80", "", 2), "No such service");
    assert_eq!(
        err(&s, "-a -t 192.0.2.2:80 -r 10.0.0.2", "", 2),
        "Service not defined"
    );
    assert_eq!(
        err(&s, "-d -t 192.0.2.1:80 -r 10.0.0.9", "", 2),
        "No such destination"
    );
    assert_eq!(err(&s, "-L -t 192.0.2.2:80", "", 1), "No such service");
    // Grammar errors never reach the daemon.
    assert!(err(&s, "-A -t 192.0.2.300:80", "", 2).contains("192.0.2.300"));
    assert!(err(&s, "-A -t 192.0.2.1:80 -s fastest", "", 2).contains("fastest"));
    assert!(err(&s, "-a -t 192.0.2.1:80 -r 10.0.0.3 -w 70000", "", 2).contains("weight"));
    assert!(err(&s, "--bogus", "", 2).contains("--bogus"));
    assert!(err(&s, "-L --socket", "", 2).contains("--socket"));
    // No daemon.
    let gone = s.with_file_name("nobody.sock");
    assert!(err(&gone, "-L -n", "", 2).contains("cannot connect to xvsd"));
    // XVS_SOCKET chooses the socket when --socket is not given.
    let o = Proc::new(env!("CARGO_BIN_EXE_xvsadm"))
        .args(["-L", "-n"])
        .env("XVS_SOCKET", &s)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("TCP  192.0.2.1:80 wlc"));
}

fn start_named(tag: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("xvs-adm-{}-{tag}", std::process::id()));
    Server::start(
        ServerConfig::new(dir.join("xvsd.sock")),
        Arc::new(ModelHandler(Mutex::new(Model::new()))),
    )
    .unwrap()
}
