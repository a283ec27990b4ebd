#!/bin/sh
# Real-server set-up for masquerading (xvsadm -m), as for LVS-NAT: replies
# must go back through the director, which rewrites their source to the
# VIP. The simplest way is a default route via the director's inside
# address (or a policy route for the service's source port if the server
# has another default route).
#
# Usage: realserver-nat.sh start|stop DIRECTOR_INSIDE_ADDR [IPv6_ADDR]
set -eu
action=${1:-}
[ $# -ge 2 ] || { echo "usage: $0 start|stop DIRECTOR_ADDR [DIRECTOR_ADDR6]" >&2; exit 2; }
shift
case "$action" in
start)
    ip route replace default via "$1"
    [ $# -lt 2 ] || ip -6 route replace default via "$2"
    ;;
stop)
    ip route del default via "$1" 2>/dev/null || true
    [ $# -lt 2 ] || ip -6 route del default via "$2" 2>/dev/null || true
    ;;
*) echo "usage: $0 start|stop DIRECTOR_ADDR [DIRECTOR_ADDR6]" >&2; exit 2 ;;
esac
