//! Privileges after set-up: once the XDP program is attached, the UMEMs
//! are allocated and locked and the sockets are bound, xvsd needs only
//! three capabilities to keep serving:
//!
//! - `CAP_NET_ADMIN`: netlink requests (asking the kernel to resolve a
//!   real server's MAC, `NTF_USE`);
//! - `CAP_BPF`: updating the steering maps when the configuration changes
//!   (the `bpf()` call is refused to unprivileged processes when
//!   `kernel.unprivileged_bpf_disabled` is set, as on most distributions);
//! - `CAP_NET_RAW`: kept for the AF_XDP sockets' wake-ups and re-binds.
//!
//! Everything else (`CAP_SYS_ADMIN`, `CAP_DAC_OVERRIDE`, `CAP_SETUID`,
//! `CAP_SYS_PTRACE`, ...) is dropped from the effective, permitted,
//! inheritable and ambient sets, and from the bounding set, so nothing
//! xvsd starts later (health checks' MISC commands) can regain it, even as
//! uid 0. On a kernel without `CAP_BPF` (before 5.8), `CAP_SYS_ADMIN` is
//! kept in its place.

use caps::{CapSet, Capability, CapsHashSet};

/// What xvsd keeps.
const KEPT: [Capability; 3] = [
    Capability::CAP_NET_ADMIN,
    Capability::CAP_BPF,
    Capability::CAP_NET_RAW,
];

/// Drops every capability but [`KEPT`] (see the module docs); returns the
/// ones kept. A process that lacks `CAP_SETPCAP` (not root) keeps its
/// bounding set and only narrows the others.
pub fn drop_privileges() -> Result<Vec<Capability>, String> {
    fn err(what: &'static str) -> impl Fn(caps::errors::CapsError) -> String {
        move |e| format!("{what}: {e}")
    }
    let permitted = caps::read(None, CapSet::Permitted).map_err(err("reading capabilities"))?;
    let mut keep: CapsHashSet = KEPT
        .iter()
        .copied()
        .filter(|c| permitted.contains(c))
        .collect();
    if !caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::all())
        .contains(&Capability::CAP_BPF)
        && permitted.contains(&Capability::CAP_SYS_ADMIN)
    {
        keep.insert(Capability::CAP_SYS_ADMIN);
    }
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for c in caps::all() {
            if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, c).map_err(err("bounding set"))?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(err("ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(err("inheritable set"))?;
    caps::set(None, CapSet::Effective, &keep).map_err(err("effective set"))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(err("permitted set"))?;
    let mut kept: Vec<Capability> = keep.into_iter().collect();
    kept.sort_by_key(|c| c.index());
    Ok(kept)
}
