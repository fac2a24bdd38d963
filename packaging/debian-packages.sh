# The Debian packages tilld needs, in one place: sourced by scripts/setup.sh (the README's two
# commands and CI) and by packaging/build-deb.sh (the package's Depends).

# To build: headers and pkg-config files of the C libraries the Swift targets link.
#   libsystemd-dev: sd_notify, sd_listen_fds; libsqlite3-dev: GRDB's SQLite;
#   libphonenumber-dev: phone numbers for till-crm; libevdev-dev and libxkbcommon-dev (with
#   xkb-data, the layouts): keyboard-wedge scanners; libusb-1.0-0-dev: USB printers;
#   libpng-dev and libqrencode-dev: receipt logos, and QR codes as pictures; libudev-dev:
#   what is plugged in, and hotplug; libjpeg62-turbo-dev: the receipt pictures a browser POS
#   sends to till-web.
BUILD_PACKAGES="libsystemd-dev libsqlite3-dev libphonenumber-dev libevdev-dev libxkbcommon-dev xkb-data libusb-1.0-0-dev libpng-dev libqrencode-dev libudev-dev libjpeg62-turbo-dev pkg-config"

# To run the tests, on top of the build's:
#   systemd: systemd-analyze, systemd-socket-activate; util-linux: setpriv (a client as another
#   uid); python3: the example client; strace: the durability tests count syncs; e2fsprogs:
#   chattr makes the journal unwritable; socat and umockdev: the device test recipes;
#   python3-gi and gir1.2-umockdev-1.0: a umockdev testbed that plugs devices in and out;
#   postgresql: till-crm's store tests also run against PostgreSQL (scripts/postgres-test-server.sh);
#   chromium: till-web's pages are tested in a real browser, headless (Tests/IntegrationTests/BrowserTests.swift),
#   and libnss3-tools (certutil) makes that browser trust till-web's local certificate authority.
TEST_PACKAGES="systemd util-linux python3 socat umockdev python3-gi gir1.2-umockdev-1.0 strace e2fsprogs postgresql chromium libnss3-tools"

# To build the Debian package, on top of the build's.
PACKAGE_PACKAGES="dpkg-dev fakeroot"

# What the installed programs need at run time (the package's Depends). The Swift runtime is
# linked into the programs (--static-swift-stdlib), so no Swift package is needed on a till.
RUN_DEPENDS="libc6, libstdc++6, libsystemd0, libsqlite3-0, libphonenumber8, libevdev2, libxkbcommon0, xkb-data, libusb-1.0-0, libpng16-16, libqrencode4, libudev1, libjpeg62-turbo, systemd"
