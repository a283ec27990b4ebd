//! The Debian package `xvs`, as a crate: `Cargo.toml` holds the package's
//! cargo-deb metadata (what goes where: `xvsd` and `xvsadm` from the
//! other crates of the workspace, their man pages and completions, the
//! systemd unit, the default configuration, the deploy scripts, the
//! documentation). There is no code; `cargo xtask deb` builds the package
//! and `cargo xtask check-deb` checks it (`scripts/package.sh` runs both).
#![forbid(unsafe_code)]
