#!/bin/sh
# LVS-DR real server setup (run as root on rs1 and rs2): accept the VIP without claiming it.
#
#   realserver.sh start|stop [VIP] [DEV]        defaults: 192.0.2.100 eth0
#
# With direct routing the master director forwards the client's packet unchanged (destination
# still the VIP) to the real server's MAC, so each real server must hold the VIP itself: on lo,
# as a /32, so it adds no route. It must never answer ARP for it, or clients would send to a
# real server instead of the director:
#   arp_ignore=1    answer ARP only for addresses configured on the interface asked (eth0),
#                   never for the VIP on lo;
#   arp_announce=2  never use the VIP as the source of our own ARP requests (use eth0's address).
# The kernel uses the larger of the `all` and the per-interface value, so both are set, and
# before the VIP is added, so there is no moment where it could be announced.
set -eu
VIP=${2:-192.0.2.100}
DEV=${3:-eth0}

case "${1:-}" in
start)
    for scope in all "$DEV"; do
        sysctl -q -w "net.ipv4.conf.$scope.arp_ignore=1" "net.ipv4.conf.$scope.arp_announce=2"
    done
    ip addr replace "$VIP/32" dev lo
    ;;
stop)
    ip addr del "$VIP/32" dev lo 2>/dev/null || true
    for scope in all "$DEV"; do
        sysctl -q -w "net.ipv4.conf.$scope.arp_ignore=0" "net.ipv4.conf.$scope.arp_announce=0"
    done
    ;;
*)
    echo "usage: $0 start|stop [VIP] [DEV]" >&2
    exit 2
    ;;
esac
