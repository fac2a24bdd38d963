#!/usr/bin/env bash
# Starts the PostgreSQL server till-crm's store tests use (Debian's postgresql package, on
# loopback), gives it a role with a new password and an empty database, and prints the two
# variables the tests read:
#   eval "$(scripts/postgres-test-server.sh)" && swift test
# Needs root (or sudo without a password) to start the cluster and act as the postgres user.
set -euo pipefail
# Only the two export lines may reach stdout (the caller evals it): whatever the PostgreSQL
# tools print along the way ("Removed stale pid file.", notices) goes to stderr.
exec 3>&1 1>&2

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "postgres-test-server: PostgreSQL is not installed: scripts/setup.sh test installs it (Debian's postgresql)" >&2
    exit 1
fi
read -r version name port status _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${version:-}" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    as_root pg_createcluster "$version" main >/dev/null 3>&-
    read -r version name port status _ < <(pg_lsclusters --no-header | head -n 1)
fi
if [ "$status" != "online" ]; then
    as_root pg_ctlcluster "$version" "$name" start 3>&-  # the server must not hold the caller's pipe open
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { echo "postgres-test-server: the $version/$name cluster did not come up on 127.0.0.1:$port; see /var/log/postgresql/" >&2; exit 1; }

password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'till_crm_test') THEN CREATE ROLE till_crm_test LOGIN; END IF;
END \$\$;
ALTER ROLE till_crm_test PASSWORD '$password';
DROP DATABASE IF EXISTS till_crm_test WITH (FORCE);
CREATE DATABASE till_crm_test OWNER till_crm_test;
SQL
echo "export TILL_TEST_POSTGRES_URL=postgres://till_crm_test@127.0.0.1:$port/till_crm_test" >&3
echo "export TILL_TEST_POSTGRES_PASSWORD=$password" >&3
