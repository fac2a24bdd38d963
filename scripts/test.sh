#!/usr/bin/env bash
# The README's second command: installs what the tests need (when missing), starts the
# PostgreSQL server the customer-store tests also run against, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scripts/setup.sh test
postgres=1
if settings=$(scripts/postgres-test-server.sh); then
    eval "$settings"
else
    # CI sets TILL_TEST_REQUIRE_POSTGRES=1: there the PostgreSQL cases fail instead of being left out.
    echo "test: no PostgreSQL server for the store tests (above: why); they run on SQLite only" >&2
    postgres=0
fi
# What the tests write to the temporary directory (journals, customer stores, umockdev
# testbeds, traces, a browser profile) goes under one directory of this run, removed when it
# ends, passed or failed; TILL_TEST_KEEP=1 keeps it and says where. Left in /tmp, a run left
# about 20 directories behind, more than a thousand after a day of runs.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/till-tests.XXXXXX")
chmod 755 "$scratch"  # some tests run tilld or till-crm as nobody, in directories under it
if [ "${TILL_TEST_KEEP:-0}" = 1 ]; then
    trap 'echo "test: the files the tests wrote are kept in $scratch" >&2' EXIT
else
    trap 'rm -rf "$scratch"' EXIT
fi
export TMPDIR=$scratch
if [ $# -gt 0 ]; then
    swift test "$@"
    exit
fi
# Two runs. First everything on SQLite; then the customer-store tests and the chain tests
# (4 tilld, 4 till-crm) against PostgreSQL. Side by side, the database server and dozens of
# debug-built clients load a two-core machine enough to starve the timers of unrelated tests.
env -u TILL_TEST_POSTGRES_URL -u TILL_TEST_POSTGRES_PASSWORD -u TILL_TEST_REQUIRE_POSTGRES swift test --skip CRMChainTests
if [ "$postgres" = 1 ] || [ "${TILL_TEST_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "test: the customer store and a chain of tills, against PostgreSQL"
    swift test --skip-build --filter 'TillCRMTests|CRMChainTests'
fi
