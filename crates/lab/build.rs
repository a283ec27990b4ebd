//! Compiles the TUN decapsulation XDP program (`src/bpf/decap.c`) with
//! clang into `$OUT_DIR/xvs_decap.o`, embedded by `src/decap.rs`.
//!
//! Without clang the build still succeeds (an empty object is embedded and
//! `xvs_lab::decap_object` reports the lab as unsupported), so crates that
//! only need the rest of the lab do not require clang. `CLANG` names
//! another compiler.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/bpf/decap.c");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("xvs_decap.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let result = Command::new(&clang)
        .args([
            "-O2",
            "-Wall",
            "-Werror",
            "-target",
            "bpf",
            "-c",
            "src/bpf/decap.c",
            "-o",
        ])
        .arg(&obj)
        .output();
    let failure = match result {
        Ok(o) if o.status.success() => return,
        Ok(o) => format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => e.to_string(),
    };
    println!(
        "cargo:warning=xvs-lab: TUN decap XDP program not built ({clang}: {failure}); \
         install clang to run TUN labs"
    );
    std::fs::write(&obj, b"").expect("write empty decap object");
}
