//! The TUN decapsulator: an XDP program for a real server's interface.
//!
//! The kernel here has no `ipip`, `sit` or `ip6_tunnel`, so a real server in
//! a namespace cannot take the IP-in-IP packets an LVS director sends in TUN
//! mode. `src/bpf/decap.c` (built by `build.rs` with `clang -target bpf`)
//! does it in XDP: a frame whose outer header is IPv4 with protocol 4
//! (IPv4-in-IPv4) or 41 (IPv6-in-IPv4), or IPv6 with next header 4 or 41
//! (no extension headers), loses the outer header; the Ethernet header is
//! moved up and gets the inner EtherType; `XDP_PASS` hands the inner packet
//! to the kernel as if it had come unencapsulated. Everything else, and
//! fragments of the outer packet, pass untouched. The object is map-less
//! and attached with `ip link set dev DEV xdp obj OBJ sec xdp`.
//!
//! Unlike a kernel tunnel device, the decapsulated packet is seen on the
//! physical interface itself (no `tunl0`), so no rp_filter exception for a
//! tunnel device is needed; the inner packet's source must still pass the
//! interface's rp_filter (the lab turns it off on real servers).

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::{LabError, Result};
use crate::netns::Netns;

/// ELF section of the program.
pub const DECAP_SECTION: &str = "xdp";
/// Name of the program as `ip link` / bpftool show it.
pub const DECAP_PROG_NAME: &str = "xvs_decap";

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xvs_decap.o"));

/// The compiled object, or `Unsupported` when clang was missing at build
/// time.
pub fn decap_object_bytes() -> Result<&'static [u8]> {
    if OBJECT.is_empty() {
        return Err(LabError::Unsupported(
            "the TUN decap XDP program was not built (clang missing when xvs-lab was compiled)"
                .into(),
        ));
    }
    Ok(OBJECT)
}

/// A file holding the object (written once per content into the temp
/// directory), for `ip link set ... xdp obj FILE`.
pub fn decap_object() -> Result<PathBuf> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = PATH.get() {
        return Ok(p.clone());
    }
    let bytes = decap_object_bytes()?;
    // FNV-1a of the content: processes with the same object share the file,
    // a changed object gets a new one.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let dir = std::env::temp_dir();
    let path = dir.join(format!("xvs-lab-decap-{hash:016x}.o"));
    if std::fs::read(&path).ok().as_deref() != Some(bytes) {
        let tmp = dir.join(format!(
            "xvs-lab-decap-{hash:016x}.{}.tmp",
            std::process::id()
        ));
        std::fs::write(&tmp, bytes)
            .map_err(|e| LabError::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| LabError::io(format!("rename to {}", path.display()), e))?;
    }
    Ok(PATH.get_or_init(|| path).clone())
}

impl Netns {
    /// Attaches the TUN decapsulator to `dev`.
    pub fn attach_decap(&self, dev: &str) -> Result<()> {
        let obj = decap_object()?;
        self.attach_xdp(dev, &obj, DECAP_SECTION)
    }
}
