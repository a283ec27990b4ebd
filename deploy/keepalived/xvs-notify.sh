#!/bin/sh
# keepalived notify script for xvs directors: xvsd's connection-sync daemon
# follows the VRRP state. On becoming master the director stops its backup
# daemon and starts the master one (it owns the VIP, so it sends the
# connections it makes); on becoming backup, or on a fault, the reverse
# (it learns the master's connections, to take them over). The same
# `ipvsadm --start-daemon` / `--stop-daemon` calls an LVS director makes.
#
# Usage (keepalived.conf, see the file next to this one):
#   notify_master "/usr/share/xvs/keepalived/xvs-notify.sh master IFACE SYNCID"
#   notify_backup "/usr/share/xvs/keepalived/xvs-notify.sh backup IFACE SYNCID"
#   notify_fault  "/usr/share/xvs/keepalived/xvs-notify.sh fault IFACE SYNCID"
# (the xvs package's path; installed by hand, wherever you put it)
#
# Environment:
#   XVS_SOCKET  xvsd's control socket (xvsadm's default: /run/xvs/xvsd.sock)
#   XVSADM      the xvsadm program (default: xvsadm on PATH)
set -u
usage() { echo "usage: $0 master|backup|fault IFACE SYNCID" >&2; exit 2; }
[ $# -eq 3 ] || usage
event=$1 iface=$2 syncid=$3
xvsadm=${XVSADM:-xvsadm}

log() {
    logger -t xvs-notify -- "$*" 2>/dev/null || true
    echo "xvs-notify: $*" >&2
}

case "$event" in
master) stop=backup start=master ;;
backup | fault) stop=master start=backup ;;
*) usage ;;
esac

# One role at a time: stop the other one (not running is fine).
"$xvsadm" --stop-daemon "$stop" >/dev/null 2>&1 || true
# Already in the wanted role (keepalived repeats a state on reload).
if "$xvsadm" -L --daemon 2>/dev/null | grep -q "^$start sync daemon"; then
    log "$event: $start sync daemon already running"
    exit 0
fi
if ! out=$("$xvsadm" --start-daemon "$start" --mcast-interface "$iface" --syncid "$syncid" 2>&1); then
    log "$event: xvsadm --start-daemon $start --mcast-interface $iface --syncid $syncid failed: $out"
    exit 1
fi
log "$event: $start sync daemon on $iface, syncid $syncid"
