#!/bin/sh
# Real-server set-up for direct routing (xvsadm -g), as for LVS-DR: the VIP
# on the loopback so the server accepts packets addressed to it, and ARP
# tuned so the server never answers or announces the VIP on the wire (only
# the director may).
#
# Usage: realserver-dr.sh start|stop VIP [VIP...]   (IPv4 and IPv6 VIPs)
set -eu
action=${1:-}
[ $# -ge 2 ] || { echo "usage: $0 start|stop VIP [VIP...]" >&2; exit 2; }
shift
case "$action" in
start)
    # arp_ignore=1: answer ARP only for addresses of the receiving
    # interface (not lo's VIP); arp_announce=2: never use the VIP as the
    # source of ARP requests.
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    sysctl -qw net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    for vip in "$@"; do
        case "$vip" in
        *:*) ip -6 addr replace "$vip/128" dev lo nodad ;;
        *) ip addr replace "$vip/32" dev lo ;;
        esac
    done
    ;;
stop)
    for vip in "$@"; do
        case "$vip" in
        *:*) ip -6 addr del "$vip/128" dev lo 2>/dev/null || true ;;
        *) ip addr del "$vip/32" dev lo 2>/dev/null || true ;;
        esac
    done
    ;;
*) echo "usage: $0 start|stop VIP [VIP...]" >&2; exit 2 ;;
esac
