#!/bin/sh
# vrrp_script check for MariaDB / MySQL: a real query, not a ping.
#
#   check_mysql.sh OPTION_FILE
#
# OPTION_FILE ([client] user, password, host, port) is root's, mode 0600, so the password is on
# no command line. Exit 0 when the server answers `SELECT 1`; a refused login, a refused or slow
# connection (1 s) or any error fails. `mysqladmin ping` would not do: it exits 0 even when the
# login is refused. A server that accepts and then hangs is killed at the vrrp_script `timeout`.
cnf=${1:?usage: check_mysql.sh OPTION_FILE}
client=$(command -v mariadb || command -v mysql) || { echo "no mariadb/mysql client" >&2; exit 2; }
exec "$client" --defaults-extra-file="$cnf" --connect-timeout=1 --batch --skip-column-names \
    -e 'SELECT 1' >/dev/null
