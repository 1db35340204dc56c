-- The account check_mysql.sh and notify_mysql.sh use (client.cnf). Run once on each server as
-- an administrator: mariadb < users.sql. `SELECT 1` needs no privilege; READ_ONLY ADMIN
-- (MariaDB 10.5.2 and later) is what `SET GLOBAL read_only` needs, and all this account gets.
-- MySQL 8: GRANT SYSTEM_VARIABLES_ADMIN instead.
-- 127.0.0.1 matches with and without skip-name-resolve.
CREATE USER IF NOT EXISTS 'keepalived'@'127.0.0.1' IDENTIFIED BY 'change-me';
GRANT READ_ONLY ADMIN ON *.* TO 'keepalived'@'127.0.0.1';
