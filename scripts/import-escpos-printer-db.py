#!/usr/bin/env python3
"""Regenerates Sources/TillDrivers/Quirks/printer-profiles.json from the ESC/POS printer database.

The printer profiles (paper width, columns per font, code pages, cutter, QR and raster support)
come from receipt-print-hq/escpos-printer-db, licensed CC-BY 4.0, which python-escpos ships as
escpos/capabilities.json. We import it as data instead of typing tables by hand.

    python3 scripts/import-escpos-printer-db.py                 # downloads python-escpos from PyPI
    python3 scripts/import-escpos-printer-db.py capabilities.json

The output is sorted and stable, so a re-run with the same input changes nothing.
"""
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Sources", "TillDrivers", "Quirks", "printer-profiles.json")
ATTRIBUTION = ("ESC/POS printer database, https://github.com/receipt-print-hq/escpos-printer-db, "
               "CC-BY 4.0 (c) its contributors; imported from python-escpos's capabilities.json "
               "by scripts/import-escpos-printer-db.py")


def load_capabilities(argv):
    if len(argv) > 1:
        with open(argv[1]) as f:
            return json.load(f), argv[1]
    with tempfile.TemporaryDirectory() as work:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", work, "python-escpos"])
        wheel = next(os.path.join(work, name) for name in os.listdir(work) if name.endswith(".whl"))
        with zipfile.ZipFile(wheel) as archive:
            return json.loads(archive.read("escpos/capabilities.json")), os.path.basename(wheel)


def number(value):
    return value if isinstance(value, (int, float)) else None


def convert(name, profile):
    features = profile.get("features", {})
    media = profile.get("media", {})
    width = media.get("width", {})
    fonts = [{"name": font.get("name", key), "columns": font.get("columns")}
             for key, font in sorted(profile.get("fonts", {}).items(), key=lambda item: int(item[0]))]
    pages = {key: page for key, page in profile.get("codePages", {}).items() if page != "Unknown"}
    return {
        "vendor": profile.get("vendor"),
        "model": profile.get("name", name),
        "notes": profile.get("notes", ""),
        "paper_mm": number(width.get("mm")),
        "dots": number(width.get("pixels")),
        "dpi": number(media.get("dpi")),
        "fonts": fonts,
        "code_pages": dict(sorted(pages.items(), key=lambda item: int(item[0]))),
        "cut": {"full": bool(features.get("paperFullCut")), "partial": bool(features.get("paperPartCut"))},
        "qr": bool(features.get("qrCode")),
        "raster": bool(features.get("bitImageRaster")),
        "graphics": bool(features.get("graphics")),
        "barcodes": bool(features.get("barcodeB", features.get("barcodeA", True))),
        "drawer_pulse": bool(features.get("pulseStandard")),
        "star_commands": bool(features.get("starCommands")),
    }


def main():
    capabilities, origin = load_capabilities(sys.argv)
    profiles = {name: convert(name, profile) for name, profile in sorted(capabilities["profiles"].items())}
    document = {"format": 1, "source": ATTRIBUTION, "imported_from": origin, "profiles": profiles}
    with open(OUT, "w") as f:
        json.dump(document, f, indent=1, sort_keys=False, ensure_ascii=False)
        f.write("\n")
    print("wrote %d profiles to %s" % (len(profiles), os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
