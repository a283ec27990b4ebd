//! The `xvs-echo` binary, run in a namespace and spoken to over its
//! loopback (root only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use xvs_lab::{Netns, Proc, client, pattern, ready};

const T: Duration = Duration::from_secs(5);

/// Starts `xvs-echo` inside `ns` and waits for its ready line.
fn start_echo(ns: &Netns, args: &[&str]) -> Proc {
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_xvs-echo"));
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut proc = Proc::spawn(&mut cmd).expect("spawn xvs-echo");
    let out = proc.child_mut().stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.contains(" ready "), "xvs-echo said {line:?}");
    proc
}

#[test]
fn echo_binary_serves_http_and_udp_on_v4_and_v6() {
    if !ready("echo_binary_serves_http_and_udp_on_v4_and_v6", &[]) {
        return;
    }
    let ns = Netns::new("t-echo").expect("ns");
    let _echo = start_echo(
        &ns,
        &[
            "--name",
            "web1",
            "--tcp",
            "0.0.0.0:8080",
            "--tcp",
            "[::]:8080",
            "--udp",
            "0.0.0.0:5353",
            "--udp",
            "[::]:5353",
        ],
    );
    for host in ["127.0.0.1", "[::1]"] {
        let http: SocketAddr = format!("{host}:8080").parse().unwrap();
        let udp: SocketAddr = format!("{host}:5353").parse().unwrap();

        let r = ns.http_get(http, "/").expect("GET /");
        assert_eq!((r.status, r.text().as_str()), (200, "web1\n"));
        assert_eq!(r.real_server(), Some("web1"));
        assert_eq!(r.header("x-local-addr"), Some(http.to_string().as_str()));
        assert_eq!(
            r.header("x-client-addr"),
            Some(r.local.to_string().as_str())
        );

        let r = ns.http_get(http, "/bytes/3000001").expect("GET /bytes");
        assert_eq!(r.body.len(), 3_000_001);
        assert_eq!(pattern::first_mismatch(0, &r.body), None);

        assert_eq!(ns.http_get(http, "/nothing").unwrap().status, 404);

        let (answer, from) = ns.udp_request(udp, b"payload", T).expect("UDP");
        assert_eq!(answer, b"web1\npayload");
        assert_eq!(from, udp);

        // Raw HTTP/1.0 (closes) and HTTP/1.1 keep-alive on one connection.
        let raw = ns
            .run(move || -> std::io::Result<(String, String)> {
                let mut s = TcpStream::connect_timeout(&http, T)?;
                s.set_read_timeout(Some(T))?;
                s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut old = String::new();
                s.read_to_string(&mut old)?;
                let mut s = TcpStream::connect_timeout(&http, T)?;
                s.set_read_timeout(Some(T))?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")?;
                let mut both = Vec::new();
                s.read_to_end(&mut both)?;
                Ok((old, String::from_utf8_lossy(&both).into_owned()))
            })
            .unwrap()
            .expect("raw HTTP");
        assert!(raw.0.starts_with("HTTP/1.1 200 OK\r\n") && raw.0.ends_with("\r\n\r\nweb1\n"));
        assert!(raw.0.contains("Connection: close"));
        assert_eq!(raw.1.matches("HTTP/1.1 200 OK").count(), 2, "{}", raw.1);
        assert!(raw.1.contains("Connection: keep-alive"));
    }
    // The client helper reports a refused connection as an error.
    let closed: SocketAddr = "127.0.0.1:8081".parse().unwrap();
    assert!(
        ns.run(|| client::http_get(closed, "/", T))
            .unwrap()
            .is_err()
    );
}
