#!/usr/bin/env bash
# Installs what tilld needs on Debian, saying what and why, only what is missing.
#   scripts/setup.sh build     to build tilld
#   scripts/setup.sh test      to build and run the tests
#   scripts/setup.sh package   to build the Debian package
# As root it runs apt-get itself; otherwise through sudo (asking first); without either it
# prints the command to run. Swift itself is expected at /opt/swift (or on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../packaging/debian-packages.sh
. "$here/packaging/debian-packages.sh"

purpose=${1:-build}
case "$purpose" in
    build) wanted="$BUILD_PACKAGES" ;;
    test) wanted="$BUILD_PACKAGES $TEST_PACKAGES" ;;
    package) wanted="$BUILD_PACKAGES $PACKAGE_PACKAGES" ;;
    *) echo "usage: scripts/setup.sh build|test|package" >&2; exit 2 ;;
esac

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
    echo "setup: Swift is not installed: unpack a Swift 6 toolchain for Debian 12 at /opt/swift (https://www.swift.org/install/linux/), then run this again" >&2
    exit 1
fi

missing=()
for package in $wanted; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "setup: to $purpose tilld, these Debian packages are needed and missing: ${missing[*]}"
command=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    "${command[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1; then
    echo "setup: installing them with sudo (it may ask for your password)"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${command[@]}" >/dev/null
else
    echo "setup: run as root: apt-get update && ${command[*]}" >&2
    exit 1
fi
echo "setup: installed ${missing[*]}"
