#!/usr/bin/env bash
# The README's second command: installs what the tests need (when missing), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scripts/setup.sh test
exec swift test "$@"
