#!/bin/sh
# LVS-NAT director setup (run as root on dir1 and dir2, before keepalived/vrrpd starts).
#
#   director.sh start|stop [DEV]                 default: eth0
#
# ip_forward: the replies from the real servers are forwarded (and rewritten) by the director.
# send_redirects=0: with outside and inside on one LAN (a one-armed director, as in this
# example), the kernel would otherwise tell the real servers by ICMP redirect to send their
# replies to the client directly, past the rewrite. With separate NICs it does no harm.
set -eu
DEV=${2:-eth0}

case "${1:-}" in
start) value=1 redirects=0 ;;
stop) value=0 redirects=1 ;;
*)
    echo "usage: $0 start|stop [DEV]" >&2
    exit 2
    ;;
esac
sysctl -q -w "net.ipv4.ip_forward=$value"
for scope in all "$DEV"; do
    sysctl -q -w "net.ipv4.conf.$scope.send_redirects=$redirects"
done
