#!/bin/sh
# Real-server set-up for IP-in-IP tunnelling (xvsadm -i), as for LVS-TUN:
# the kernel's ipip (IPv4 outer) and ip6_tunnel (IPv6 outer) devices
# decapsulate, the VIP sits on the tunnel device, ARP is kept quiet as for
# DR, and reverse-path filtering is relaxed on the tunnel (the inner
# source is a client the tunnel device has no route back through).
#
# xvs encapsulates with the outer family of the real server's address:
# 4in4/6in4 to an IPv4 real server (tunl0), 4in6/6in6 to an IPv6 one
# (ip6tnl0).
#
# Usage: realserver-tun.sh start|stop VIP [VIP...]
set -eu
action=${1:-}
[ $# -ge 2 ] || { echo "usage: $0 start|stop VIP [VIP...]" >&2; exit 2; }
shift
case "$action" in
start)
    modprobe ipip
    modprobe ip6_tunnel 2>/dev/null || true
    ip link set tunl0 up
    ip link set ip6tnl0 up 2>/dev/null || true
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 net.ipv4.conf.all.rp_filter=0
    for vip in "$@"; do
        case "$vip" in
        *:*) ip -6 addr replace "$vip/128" dev lo nodad ;;
        *) ip addr replace "$vip/32" dev tunl0 ;;
        esac
    done
    ;;
stop)
    for vip in "$@"; do
        case "$vip" in
        *:*) ip -6 addr del "$vip/128" dev lo 2>/dev/null || true ;;
        *) ip addr del "$vip/32" dev tunl0 2>/dev/null || true ;;
        esac
    done
    ;;
*) echo "usage: $0 start|stop VIP [VIP...]" >&2; exit 2 ;;
esac
