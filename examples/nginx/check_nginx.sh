#!/bin/sh
# vrrp_script check for nginx: ask nginx itself, not the process table.
#
#   check_nginx.sh [URL]        (default http://127.0.0.1/nginx_status)
#
# Exit 0 when nginx answers URL with a 2xx within 1 s. Anything else is a failure: refused,
# timed out, 4xx/5xx. So a hung, overloaded or misconfigured nginx counts as down even while all
# its processes exist (a `pidof nginx` check would keep the VIP on it). --noproxy: an http_proxy
# in the daemon's environment must not turn this into a question about the proxy.
url=${1:-http://127.0.0.1/nginx_status}
exec curl --noproxy '*' -fsS --max-time 1 -o /dev/null "$url"
