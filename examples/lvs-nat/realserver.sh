#!/bin/sh
# LVS-NAT real server setup (run as root on rs1 and rs2): route replies back through the director.
#
#   realserver.sh start|stop [GATEWAY]           default: 192.0.2.1
#
# The master director rewrote the client's packet to this server's address; the reply must go
# back through that director so it can rewrite the source back to the VIP. A reply sent any other
# way reaches the client from an address it never talked to, and the client drops it. So the
# default route goes via the inside VIP the directors' VRRP sync group keeps on the master
# (VI_INSIDE in keepalived.conf): after a failover the route is still right.
set -eu
GW=${2:-192.0.2.1}

case "${1:-}" in
start)
    ip route replace default via "$GW"
    ;;
stop)
    ip route del default via "$GW" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start|stop [GATEWAY]" >&2
    exit 2
    ;;
esac
