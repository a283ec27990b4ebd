//! `xvs-echo`: the lab's real-server program.
//!
//! ```text
//! xvs-echo --name rs1 --tcp 0.0.0.0:80 --tcp [::]:80 --udp 0.0.0.0:5353
//! ```
//!
//! HTTP/1.0 and 1.1 `GET /` answers `NAME\n`; `GET /bytes/N` answers `N`
//! bytes of the lab's deterministic pattern; each UDP datagram is answered
//! with `NAME\n` followed by the datagram, from the address it was sent to.
//! Prints one line `xvs-echo NAME ready ...` on stdout once every socket is
//! bound, then serves until killed. Run it inside a namespace with
//! `ip netns exec NS xvs-echo ...`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use xvs_lab::{EchoConfig, EchoServer};

/// HTTP and UDP echo server for xvs labs.
#[derive(Debug, Parser)]
#[command(name = "xvs-echo", version)]
struct Args {
    /// Server name: the body of `GET /` and the prefix of UDP answers.
    #[arg(long)]
    name: String,
    /// TCP (HTTP) listen address, IPv4 or IPv6 (`[::]:80`); repeatable.
    #[arg(long, value_name = "ADDR:PORT")]
    tcp: Vec<SocketAddr>,
    /// UDP listen address; repeatable.
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Vec<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.tcp.is_empty() && args.udp.is_empty() {
        eprintln!("xvs-echo: give at least one --tcp or --udp address");
        return ExitCode::from(2);
    }
    let config = EchoConfig {
        name: args.name,
        tcp: args.tcp,
        udp: args.udp,
    };
    let server = match EchoServer::start(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xvs-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let list = |v: &[SocketAddr]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "xvs-echo {} ready tcp={} udp={}",
        server.name(),
        list(server.tcp_addrs()),
        list(server.udp_addrs())
    );
    let _ = out.flush();
    drop(out);
    server.wait();
    ExitCode::SUCCESS
}
