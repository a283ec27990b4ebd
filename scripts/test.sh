#!/usr/bin/env bash
# Runs the whole xvs test suite: formatting, lints, unit, property and
# integration tests of every crate, the Debian package built and checked
# (scripts/package.sh) and its unit run under systemd in a container
# (scripts/systemd-check.sh), then a short run of every fuzz target
# (scripts/fuzz.sh, FUZZ_SECONDS each, default 20). Installs what it needs
# when missing.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# The namespace lab (crates/lab): clang builds its XDP decapsulator,
# ethtool turns off veth checksum offload, nft runs the DNAT baseline.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v ethtool >/dev/null 2>&1 || need_apt+=(ethtool)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# keepalived: VRRP between two directors in the HA tests (crates/lab
# keepalived module, crates/dataplane/tests/ha_e2e.rs); bird2: BGP from
# the directors to the lab's router (crates/lab/tests/ha.rs).
command -v keepalived >/dev/null 2>&1 || need_apt+=(keepalived)
command -v bird >/dev/null 2>&1 || need_apt+=(bird2)
# crates/dataplane: clang and the BPF headers of libbpf-dev build the XDP
# steering program (build.rs); tests/xsk_veth.rs also pings.
[ -e /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup first" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== benchmarks compile"
cargo bench -p xvs-benches --no-run --locked
# cargo fuzz (installed by scripts/fuzz.sh when missing) on stable Rust:
# two targets at a time, a fixed time each; a crash or a broken invariant
# fails the suite and leaves the input in fuzz/artifacts/<target>/.
echo "== the Debian package, and its unit under systemd"
scripts/package.sh
scripts/systemd-check.sh
echo "== fuzz targets (${FUZZ_SECONDS:-20} s each)"
FUZZ_JOBS=2 scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
# Not here: the Debian package, whose release build takes minutes more;
# `cargo test` above checks its contents, unit and pages (xtask). Build and
# check it with scripts/package.sh (docs/operations.md, "Install").
