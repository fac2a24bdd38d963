#!/usr/bin/env bash
# Builds dist/tilld_VERSION_ARCH.deb from the repository: a release build with the Swift
# runtime linked in (a till needs no Swift toolchain), staged into a tree, packed by dpkg-deb.
#   packaging/build-deb.sh            build the package into dist/
# docs/install.md says what it installs and what its maintainer scripts do.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
scripts/setup.sh package
# shellcheck source=debian-packages.sh
. packaging/debian-packages.sh

version=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/tilld/Tilld.swift)
arch=$(dpkg --print-architecture)
stage=".build/deb/tilld_${version}_${arch}"

echo "package: release build of tilld, tillctl, till-crm and till-web (static Swift runtime)"
for product in tilld tillctl till-crm till-web; do
    swift build -c release --static-swift-stdlib --product "$product" >/dev/null
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

echo "package: man pages and shell completions from the argument parsers"
swift package plugin generate-manual >/dev/null
manuals=.build/plugins/GenerateManual/outputs

rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/usr/lib/sysusers.d" \
    "$stage/usr/lib/tmpfiles.d" "$stage/lib/udev/rules.d" "$stage/etc/tilld" "$stage/etc/till-crm" "$stage/usr/share/tilld/quirks" \
    "$stage/usr/share/doc/tilld" "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d"
for product in tilld tillctl till-crm till-web; do
    install -m 0755 "$bin/$product" "$stage/usr/bin/$product"
    strip --strip-debug "$stage/usr/bin/$product"
    "$bin/$product" --generate-completion-script bash >"$stage/usr/share/bash-completion/completions/$product"
    "$bin/$product" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_$product"
    "$bin/$product" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/$product.fish"
done
find "$manuals" -name '*.1' -exec install -m 0644 {} "$stage/usr/share/man/man1/" \;
gzip -9n "$stage"/usr/share/man/man1/*.1
install -m 0644 systemd/tilld.socket systemd/tilld.service systemd/till-crm.service systemd/till-web.service "$stage/lib/systemd/system/"
install -m 0644 systemd/tilld.sysusers.conf "$stage/usr/lib/sysusers.d/tilld.conf"
install -m 0644 systemd/tilld.tmpfiles.conf "$stage/usr/lib/tmpfiles.d/tilld.conf"
install -m 0644 udev/60-tilld.rules "$stage/lib/udev/rules.d/60-tilld.rules"
install -m 0644 packaging/tilld.toml "$stage/etc/tilld/tilld.toml"
install -m 0644 packaging/till-crm.toml "$stage/etc/till-crm/till-crm.toml"
install -m 0644 packaging/till-web.toml "$stage/etc/tilld/till-web.toml"
install -m 0644 Sources/TillDrivers/Quirks/*.json "$stage/usr/share/tilld/quirks/"
install -m 0644 README.md docs/*.md "$stage/usr/share/doc/tilld/"
install -m 0644 packaging/copyright "$stage/usr/share/doc/tilld/copyright"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
printf '%s\n' /etc/tilld/tilld.toml /etc/tilld/till-web.toml /etc/till-crm/till-crm.toml >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: tilld
Version: $version
Architecture: $arch
Maintainer: tilld developers <tilld@example.invalid>
Installed-Size: $size
Depends: $RUN_DEPENDS
Section: misc
Priority: optional
Homepage: https://example.invalid/tilld
Description: till device daemon, diagnostics CLI and customer memory for shops
 tilld drives a till's barcode scanners, receipt printers, cash drawers and customer
 displays, journals every event and serves them on a Unix socket (tilld.socket).
 tillctl is the technician's CLI; till-crm keeps one clean record per customer;
 till-web lets browser POS software (Odoo POS) use the till.
CONTROL
mkdir -p dist
dpkg-deb --root-owner-group --build "$stage" "dist/tilld_${version}_${arch}.deb" >/dev/null
echo "package: dist/tilld_${version}_${arch}.deb"
