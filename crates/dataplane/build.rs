//! Compiles the XDP program `bpf/xvs_steer.bpf.c` with clang into
//! `$OUT_DIR/xvs_steer.bpf.o`, embedded by `src/xdp.rs` with `include_bytes!`.
//!
//! Needs `clang` (override with `$CLANG`) and the BPF headers of libbpf
//! (Debian: `clang libbpf-dev`; `linux-libc-dev` comes with `libc6-dev`).
//! Extra flags can be given in `$XVS_BPF_CFLAGS` (space-separated).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SRC: &str = "bpf/xvs_steer.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=XVS_BPF_CFLAGS");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let obj = out.join("xvs_steer.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());

    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
        .arg(SRC)
        .arg("-o")
        .arg(&obj);
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps in the
    // multiarch directory; clang does not search it for `-target bpf`.
    if let Some(dir) = multiarch_include() {
        cmd.arg(format!("-I{}", dir.display()));
    }
    if let Ok(extra) = env::var("XVS_BPF_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }

    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => panic!(
            "cannot run `{clang}` to compile {SRC}: {e}\n\
             install clang and the BPF headers (Debian: apt-get install clang libbpf-dev), \
             or point $CLANG at a clang binary"
        ),
    };
    if !status.success() {
        panic!(
            "`{clang}` failed to compile {SRC} ({status}); \
             are the BPF headers installed (Debian: libbpf-dev)?"
        );
    }
}

/// `/usr/include/<arch>-linux-gnu` for the target, when it exists.
fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let triple = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => return None,
    };
    let dir = Path::new("/usr/include").join(triple);
    dir.is_dir().then_some(dir)
}
