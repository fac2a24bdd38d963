#!/usr/bin/env bash
# The README's second command: installs what the tests need (when missing), starts the
# PostgreSQL server the store tests also run against, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scripts/setup.sh test
if settings=$(scripts/postgres-test-server.sh); then
    eval "$settings"
else
    # CI sets TILL_TEST_REQUIRE_POSTGRES=1: there the PostgreSQL cases fail instead of being left out.
    echo "test: no PostgreSQL server for the store tests (above: why); they run on SQLite only" >&2
fi
exec swift test "$@"
