#!/usr/bin/env bash
# CI (root, a fresh machine): installs dist/tilld_*.deb and checks what the package promises,
# then upgrades, removes and purges it, checking each step. Leaves the machine as it found it.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls dist/tilld_*.deb | head -1)
failures=0
check() {  # check DESCRIPTION COMMAND...
    local description=$1
    shift
    if "$@" >/dev/null 2>&1; then echo "ok    $description"; else echo "FAIL  $description"; failures=$((failures + 1)); fi
}
mode_owner() {  # mode_owner PATH MODE OWNER:GROUP
    [ "$(stat -c '%a %U:%G' "$1")" = "$2 $3" ]
}

echo "== install $deb"
dpkg -i "$deb" >/dev/null
check "user tilld, in group till" sh -c 'id -nG tilld | grep -qw till'
check "user till-crm, in group till" sh -c 'id -nG till-crm | grep -qw till'
check "user till-web, in group till" sh -c 'id -nG till-web | grep -qw till'
check "programs installed" test -x /usr/bin/tilld -a -x /usr/bin/tillctl -a -x /usr/bin/till-crm -a -x /usr/bin/till-web
check "till-web runs" /usr/bin/till-web --help
check "/etc/tilld/till-web.toml 644 root:root" mode_owner /etc/tilld/till-web.toml 644 root:root
check "programs carry their Swift runtime (no libswift from a toolchain)" sh -c '! ldd /usr/bin/tilld | grep -q "libswift.*not found"'
check "tillctl runs" /usr/bin/tillctl --help
check "till-crm runs" /usr/bin/till-crm --help
check "/etc/tilld/tilld.toml 644 root:root" mode_owner /etc/tilld/tilld.toml 644 root:root
check "/etc/till-crm/till-crm.toml 644 root:root" mode_owner /etc/till-crm/till-crm.toml 644 root:root
# A command reads the packaged settings: with no database yet, it names the path and where it came from.
check "till-crm commands read /etc/till-crm/till-crm.toml" sh -c \
    '/usr/bin/till-crm customer find x 2>&1 | grep -q "no customer database at /var/lib/till-crm/crm.sqlite (the data directory comes from data_dir in /etc/till-crm/till-crm.toml)"'
check "/var/lib/tilld 750 tilld:till" mode_owner /var/lib/tilld 750 tilld:till
check "/var/lib/till-crm 700 till-crm:till" mode_owner /var/lib/till-crm 700 till-crm:till
check "the installed config passes --check-config" /usr/bin/tilld --check-config --config /etc/tilld/tilld.toml
check "quirks shipped" test -s /usr/share/tilld/quirks/devices.json -a -s /usr/share/tilld/quirks/printer-profiles.json
check "udev rules" test -s /lib/udev/rules.d/60-tilld.rules
check "man pages" test -s /usr/share/man/man1/tilld.1.gz
check "bash completion" test -s /usr/share/bash-completion/completions/tillctl
check "units verify" systemd-analyze verify /lib/systemd/system/tilld.socket /lib/systemd/system/tilld.service /lib/systemd/system/till-crm.service /lib/systemd/system/till-web.service
check "tilld.service exposure <= 1.5" systemd-analyze security --offline=true --threshold=15 /lib/systemd/system/tilld.service
check "till-crm.service exposure <= 2.0" systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/till-crm.service
check "till-web.service exposure <= 2.0" systemd-analyze security --offline=true --threshold=20 /lib/systemd/system/till-web.service
check "tilld.socket enabled" sh -c 'systemctl is-enabled tilld.socket | grep -q enabled'
systemd-analyze security --offline=true /lib/systemd/system/tilld.service 2>/dev/null | tail -1 || true
systemd-analyze security --offline=true /lib/systemd/system/till-crm.service 2>/dev/null | tail -1 || true

echo "== the installed tilld keeps its journal across an upgrade"
run_tilld() {  # publish one event as user tilld on the installed state; print its seq
    local socket=/tmp/tilld-package-test.sock
    setpriv --reuid=tilld --regid=till --init-groups /usr/bin/tilld --config /etc/tilld/tilld.toml --state-dir /var/lib/tilld --socket "$socket" --log-level error &
    local pid=$!
    for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.1; done
    TILLD_SOCKET=$socket setpriv --reuid=tilld --regid=till --init-groups /usr/bin/tillctl publish pos.note '{"text":"package test"}' | grep -o '[0-9]*' | tail -1
    kill "$pid"
    wait "$pid" || true
}
first=$(run_tilld)
# till-crm's data must survive too (a stand-in file: the service is not started here).
install -m 0600 -o till-crm -g till /dev/null /var/lib/till-crm/crm.sqlite
echo "customer data" >/var/lib/till-crm/crm.sqlite
dpkg -i "$deb" >/dev/null
second=$(run_tilld)
check "seq continues after the upgrade ($first then $second)" test "$second" -gt "$first"
check "till-crm's data kept across the upgrade" grep -q "customer data" /var/lib/till-crm/crm.sqlite

echo "== remove keeps the data and the config, stops nothing that is not there"
dpkg -r tilld >/dev/null
check "programs removed" test ! -e /usr/bin/tilld
check "journal kept" test -s /var/lib/tilld/journal.sqlite
check "customer data kept" test -s /var/lib/till-crm/crm.sqlite
check "config kept (a conffile)" test -e /etc/tilld/tilld.toml -a -e /etc/till-crm/till-crm.toml
check "users kept" getent passwd tilld

echo "== purge removes the data, the config, the users and the group"
dpkg -P tilld >/dev/null
check "journal gone" test ! -e /var/lib/tilld
check "customer data gone" test ! -e /var/lib/till-crm
check "config gone" test ! -e /etc/tilld -a ! -e /etc/till-crm
check "users gone" sh -c '! getent passwd tilld && ! getent passwd till-crm && ! getent passwd till-web'
check "groups gone (till, and the users' own)" sh -c '! getent group till && ! getent group tilld && ! getent group till-crm && ! getent group till-web'

if [ "$failures" -ne 0 ]; then
    echo "package: $failures check(s) failed" >&2
    exit 1
fi
echo "package: every check passed"
