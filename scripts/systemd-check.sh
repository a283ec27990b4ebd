#!/usr/bin/env bash
# Runs the packaged xvsd.service under a real systemd, for machines (CI
# runners, containers, VMs) where systemd is not PID 1: boots a throw-away
# container with systemd-nspawn over a copy-on-write overlay of this
# machine's root (writes go to a tmpfs and vanish), with its own network
# namespace and a veth (host0) for xvsd to serve, installs the .deb in it,
# then checks the unit's life:
#   - installed: disabled and stopped;
#   - no --iface: start fails with status 2 and is not retried;
#   - with XVSD_ARGS: `systemctl start` returns once READY=1 came
#     (Type=notify), with the STATUS= line; the unit's five capabilities
#     as the bounding set, three of them effective once serving, no new
#     privileges, the socket in /run/xvs, xvsadm answers, the XDP program
#     attached;
#   - killed with SIGKILL: restarted; reinstalled: restarted; stopped:
#     XDP detached and /run/xvs gone; removed: stopped.
# Needs root; installs systemd-container when missing.
# Usage: scripts/systemd-check.sh [DEB]   (default: the newest target/debian/xvs_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "systemd-check: needs root (a container, an overlay mount)" >&2
    exit 1
fi
command -v systemd-nspawn >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container
}
target=${CARGO_TARGET_DIR:-target}
deb=${1:-$(ls -t "$target"/debian/xvs_*.deb 2>/dev/null | head -n 1)}
[ -f "$deb" ] || { echo "systemd-check: no package (scripts/package.sh builds it)" >&2; exit 1; }

# The overlay's upper layer must not be on the root file system (overlayfs
# refuses overlapping layers): /dev/shm is a tmpfs.
work=$(mktemp -d /dev/shm/xvs-systemd-check.XXXXXX)
root=$work/root
mkdir -p "$work/upper" "$work/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$root"
nspawn=
cleanup() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$nspawn" 2>/dev/null || break; sleep 1; done
        kill -KILL "$nspawn" 2>/dev/null || true
    fi
    umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cp "$deb" "$root/var/tmp/xvs.deb"
# A Docker-built root denies service actions to maintainer scripts
# (policy-rc.d exits 101); this container is a booted system.
rm -f "$root/usr/sbin/policy-rc.d"

# No machined or D-Bus on the host: --register=no --keep-unit. xvsd needs
# CAP_BPF and CAP_PERFMON, which nspawn does not grant by default, and
# bpf(2), which its system-call filter leaves out.
setsid systemd-nspawn -D "$root" --register=no --keep-unit --link-journal=no \
    --network-veth --capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf \
    -b >"$work/boot.log" 2>&1 </dev/null &
nspawn=$!
inside() { nsenter -t "$(pgrep -P "$nspawn" | head -n 1)" -a "$@"; }
for _ in $(seq 60); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 1
done
case "$state" in running | degraded) ;; *)
    tail -n 20 "$work/boot.log" >&2
    echo "systemd-check: the container did not boot ($state)" >&2
    exit 1
    ;;
esac
echo "== systemd $(inside systemctl --version | head -n 1 | cut -d' ' -f2) booted in a container"

fail() { echo "systemd-check: FAILED: $*" >&2; inside journalctl -u xvsd --no-pager | tail -n 20 >&2; exit 1; }
show() { inside systemctl show xvsd -p "$1" --value; }

inside dpkg -i /var/tmp/xvs.deb >/dev/null
[ "$(inside systemctl is-enabled xvsd || true)" = disabled ] || fail "enabled on install"
[ "$(inside systemctl is-active xvsd || true)" = inactive ] || fail "started on install"
echo "installed: disabled, inactive"

if inside systemctl start xvsd 2>/dev/null; then fail "started without --iface"; fi
sleep 3
[ "$(show ExecMainStatus)" = 2 ] || fail "status $(show ExecMainStatus), not 2"
[ "$(show NRestarts)" = 0 ] || fail "restarted after status 2"
echo "no --iface: exit status 2, not restarted"

# Where the hard RLIMIT_MEMLOCK cannot be raised (no CAP_SYS_RESOURCE for
# anyone, as on some VMs), LimitMEMLOCK=infinity has no effect: smaller
# rings keep the UMEM under 8 MiB.
args="--iface host0"
if [ "$(inside sh -c 'ulimit -Hl')" != unlimited ] && [ "$(inside sh -c 'ulimit -Hl')" -lt 16384 ]; then
    args="$args --ring-size 512"
    echo "note: hard memlock limit $(inside sh -c 'ulimit -Hl') kB here: --ring-size 512"
fi
inside ip link set host0 up
inside sed -i "s|^XVSD_ARGS=.*|XVSD_ARGS=\"$args\"|" /etc/default/xvsd
inside systemctl reset-failed xvsd
inside systemctl start xvsd || fail "start"
[ "$(show ActiveState)" = active ] || fail "not active after start"
status=$(show StatusText)
case "$status" in "serving host0 with "*) ;; *) fail "STATUS=$status" ;; esac
pid=$(show MainPID)
caps=$(inside awk '/^CapEff/ {print $2}' "/proc/$pid/status")
bound=$(inside awk '/^CapBnd/ {print $2}' "/proc/$pid/status")
# The unit grants CHOWN (0), NET_ADMIN (12), NET_RAW (13), PERFMON (38),
# BPF (39) for set-up; once serving, xvsd keeps NET_ADMIN, NET_RAW and BPF
# (daemon/privs.rs). Without CAP_SETPCAP it cannot narrow the bounding set,
# which stays the unit's.
[ "$caps" = 0000008000003000 ] || fail "effective capabilities $caps"
[ "$bound" = 000000c000003001 ] || fail "bounding set $bound"
[ "$(inside awk '/^NoNewPrivs/ {print $2}' "/proc/$pid/status")" = 1 ] || fail "NoNewPrivs"
inside test -S /run/xvs/xvsd.sock || fail "no /run/xvs/xvsd.sock"
inside xvsadm -L -n >/dev/null || fail "xvsadm -L"
inside ip link show host0 | grep -q xdp || fail "no XDP on host0"
echo "started (Type=notify): \"$status\", capabilities $caps, no new privileges, socket and XDP in place"

inside kill -KILL "$pid"
for _ in $(seq 20); do
    [ "$(show MainPID)" != "$pid" ] && [ "$(show ActiveState)" = active ] && break
    sleep 0.5
done
[ "$(show NRestarts)" = 1 ] && [ "$(show ActiveState)" = active ] || fail "not restarted after SIGKILL"
echo "SIGKILL: restarted"

pid=$(show MainPID)
inside dpkg -i /var/tmp/xvs.deb >/dev/null
[ "$(show MainPID)" != "$pid" ] && [ "$(show ActiveState)" = active ] || fail "not restarted on upgrade"
echo "reinstalled: restarted"

t0=$(date +%s%N)
inside systemctl stop xvsd
ms=$((($(date +%s%N) - t0) / 1000000))
if inside ip link show host0 | grep -q xdp; then fail "XDP left on host0"; fi
if inside test -e /run/xvs; then fail "/run/xvs left"; fi
echo "stopped in $ms ms: XDP detached, /run/xvs removed"

inside systemctl start xvsd
inside dpkg -r xvs >/dev/null
[ "$(inside systemctl is-active xvsd || true)" = inactive ] || fail "running after removal"
echo "removed: stopped"
echo "== the unit passed"
