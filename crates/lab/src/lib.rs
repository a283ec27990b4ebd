//! xvs-lab: the network-namespace lab of xvs.
//!
//! End-to-end tests, the demo and the packet-rate benchmark need a client,
//! a director and real servers wired the way LVS wires them. This crate
//! builds them in network namespaces joined by veth pairs (and a bridge in
//! a "switch" namespace for a shared L2 segment), all of it removed again
//! when the guards drop:
//!
//! - [`Netns`]: a namespace named `xvs-<role>-<pid>-<n>`, deleted on drop
//!   (also during a panic), with helpers for links, addresses, routes,
//!   neighbours, sysctls, `ethtool`, XDP and nftables; [`Netns::run`] runs
//!   code of this process inside it (sockets made there stay there);
//!   [`cleanup_stale`] removes what killed processes left behind.
//! - [`Topology`]: the DR, NAT and TUN set-ups, IPv4 and IPv6 together, with
//!   fixed addresses and MACs (table in [`topology`]), plus two kernel
//!   baselines on the NAT set-up for benchmarks: plain forwarding and
//!   nftables DNAT. DR and TUN take several directors on the segment and a
//!   router in front with an ECMP route to the VIP over them
//!   ([`TopologyBuilder::directors`], [`TopologyBuilder::router`],
//!   [`Topology::withdraw_director`]).
//! - [`keepalived`]: keepalived (VRRP) in a director's namespace, from the
//!   committed `deploy/keepalived/` configuration, as a guard; [`bird`]:
//!   BIRD (BGP) on the router and the directors from `deploy/bird/`.
//! - [`EchoServer`] (and the `xvs-echo` binary): the real servers' HTTP and
//!   UDP service, naming the server in every answer; `GET /bytes/N` serves
//!   a checkable [`pattern`].
//! - [`client`]: HTTP GET (one-shot, or keep-alive with [`HttpConn`]), UDP request/answer and raw IP packets (IP-in-IP
//!   built by [`client::ip_in_ip`]) from inside a namespace.
//! - `traffic` (feature `xsk`): an AF_XDP generator sending raw Ethernet
//!   frames (malformed ones included) from a namespace at up to a few
//!   million per second, paced or not; a SYN flood source.
//! - [`decap`]: the XDP program that lets a real server here take TUN
//!   traffic although the kernel has no `ipip` module.
//! - [`or_skip`] / [`ready`]: the test gate. Without root or a needed tool
//!   or kernel feature a test prints why and returns; with `CI=true` it
//!   fails loudly instead.
//!
//! Everything needs root; only addresses inside the lab's own namespaces
//! get traffic (192.0.2.0/24, 198.51.100.0/24, 10.0.0.0/24, 2001:db8::/32).
//!
//! ```no_run
//! use xvs_lab::{Family, Mode, Topology};
//!
//! if !xvs_lab::ready("dr demo", &["ethtool"]) {
//!     return Ok(());
//! }
//! let lab = Topology::builder(Mode::Dr).real_servers(2).build()?;
//! let _echo = lab.start_echo(80, 5353)?;
//! // Without a director yet: send the client's VIP traffic to rs1 by MAC,
//! // as the director would.
//! let rs1 = &lab.real_servers()[0];
//! lab.client().neigh_replace("eth0", lab.vip(Family::V4), rs1.mac())?;
//! let answer = lab.client().http_get(lab.vip_addr(Family::V4, 80), "/")?;
//! assert_eq!(answer.text(), "rs1\n");
//! # Ok::<(), xvs_lab::LabError>(())
//! ```
#![forbid(unsafe_code)]

pub mod bird;
pub mod client;
pub mod decap;
pub mod echo;
mod error;
#[cfg(feature = "xsk")]
pub mod floor;
pub mod keepalived;
pub mod netns;
pub mod pattern;
pub mod topology;
#[cfg(feature = "xsk")]
pub mod traffic;

pub use bird::Bird;
pub use client::{DEFAULT_TIMEOUT, HttpConn, HttpResponse};
pub use decap::decap_object;
pub use echo::{EchoConfig, EchoServer};
pub use error::{LabError, Result};
pub use keepalived::{Keepalived, VrrpConfig};
pub use netns::{MacAddr, Neighbour, Netns, Proc, VethOptions, cleanup_stale, veth};
pub use topology::{Ecmp, Family, Host, Iface, Mode, Topology, TopologyBuilder};

/// True when the environment says this is CI (`CI=true` or `CI=1`): a lab
/// that cannot run is then a failure, not a skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks that the lab can run: root, `ip`, and every program of `tools`
/// on `PATH` (e.g. `ethtool`, `nft`).
pub fn preflight(tools: &[&str]) -> Result<()> {
    netns::require_root()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in std::iter::once(&"ip").chain(tools) {
        let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
        if !found {
            return Err(LabError::Unsupported(format!("`{tool}` not found on PATH")));
        }
    }
    Ok(())
}

/// The test gate: `Some(value)` on success; on [`LabError::Unsupported`]
/// prints why and returns `None` (the test then returns early), or panics
/// when [`is_ci`]; any other error panics.
#[track_caller]
pub fn or_skip<T>(what: &str, result: Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) if e.is_unsupported() && !is_ci() => {
            eprintln!("SKIPPED {what}: {e}");
            None
        }
        Err(e) if e.is_unsupported() => {
            panic!("{what}: {e} (CI=true: the lab must run on CI machines)")
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

/// [`preflight`] through [`or_skip`]: `false` means "skip this test".
#[track_caller]
pub fn ready(what: &str, tools: &[&str]) -> bool {
    or_skip(what, preflight(tools)).is_some()
}
