#!/usr/bin/env bash
# Builds the Debian package `xvs` and checks it: a release build of xvsd
# and xvsadm, their man pages and shell completions (generated from clap),
# cargo-deb with the metadata of crates/xvs/Cargo.toml, then the
# package unpacked into a scratch root (dpkg -x) and checked: files and
# modes, conffiles, dependencies, the binaries' --version/--help, the man
# pages (groff), the completions (bash, zsh, fish when present), the unit
# (systemd-analyze verify). Installs what it needs when missing.
# Usage: scripts/package.sh [--out DIR]    (default: TARGET/debian)
# Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# clang + libbpf-dev build xvsd's XDP program (crates/dataplane/build.rs).
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
# dpkg-shlibdeps (the Depends line) and objcopy (the -dbgsym package).
command -v dpkg-shlibdeps >/dev/null 2>&1 || need_apt+=(dpkg-dev)
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup first" >&2
    exit 1
fi
cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked

deb=$(cargo xtask deb "$@" | tail -n 1)
cargo xtask check-deb "$deb"
ls -l "$deb" "${deb%/*}"/xvs-dbgsym_*.ddeb 2>/dev/null || true
echo "$deb"
