#!/usr/bin/env bash
# Runs the xvs demo on its embedded default configuration: a lab of network
# namespaces (a client, the director running xvsd, three real servers with
# small HTTP servers), first in DR then in NAT mode; real requests, xvsadm
# listings, the seed article's maintenance steps. Removes everything after.
# Needs root. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# clang + libbpf-dev build the XDP programs; ip/ethtool build the lab.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
command -v ethtool >/dev/null 2>&1 || need_apt+=(ethtool)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup first" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "the demo builds network namespaces and attaches XDP programs: run it as root" >&2
    exit 1
fi
cargo build --release --quiet --locked -p xvs-dataplane -p xvs-ctl -p xvs-lab --bin xvsd --bin xvsadm --bin xvs-lab
exec "${CARGO_TARGET_DIR:-target}/release/xvs-lab" demo
