#!/usr/bin/env python3
"""Writes Tests/TillCoreTests/Fixtures/scan-cases.json: a few hundred scans of every symbology
scanner.data names (EAN-13, EAN-8, UPC-A, UPC-E, ITF-14, Code 128, GS1-128, Code 39, Code 93,
Codabar, GS1 DataBar, QR, GS1 QR, Data Matrix, GS1 DataMatrix, PDF417, Aztec, GS1 Digital Link
URIs, and no AIM identifier at all), valid and corrupted (one digit changed, two swapped, a
digit dropped, a GS1 value off its format), with what biip (https://github.com/jodal/biip, an
independent GS1 library) makes of each: the symbology from the AIM identifier, whether the
check digit holds, the UPC-A a UPC-E stands for, the GS1 AI -> value map, or which AI failed.
The Swift classifier's table test (ScanTableTests) checks it agrees.

    python3 -m venv /tmp/biip && /tmp/biip/bin/pip install biip
    /tmp/biip/bin/python scripts/make-scan-cases.py
"""
import json
import os
import random

from biip import parse
from biip.gtin import Gtin
from biip.symbology import GS1Symbology, ISOSymbology, SymbologyIdentifier
from biip.upc import Upc

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "TillCoreTests", "Fixtures", "scan-cases.json")
GS = "\x1d"
ISO = {
    ISOSymbology.CODE_39: "code39", ISOSymbology.CODE_128: "code128", ISOSymbology.CODABAR: "codabar",
    ISOSymbology.CODE_93: "code93", ISOSymbology.ITF: "itf", ISOSymbology.PDF417: "pdf417", ISOSymbology.QR_CODE: "qr",
    ISOSymbology.DATA_MATRIX: "datamatrix", ISOSymbology.RSS_EAN_UCC_COMPOSITE: "gs1-databar", ISOSymbology.AZTEC_CODE: "aztec",
}


def check_digit(body):
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def number(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def corruptions(rng, code):
    """A digit changed, two neighbours swapped (when different), a digit dropped."""
    out = []
    i = rng.randrange(len(code))
    out.append(code[:i] + str((int(code[i]) + rng.randrange(1, 10)) % 10) + code[i + 1:])
    for j in range(len(code) - 1):
        if code[j] != code[j + 1]:
            out.append(code[:j] + code[j + 1] + code[j] + code[j + 2:])
            break
    out.append(code[:i] + code[i + 1:])
    return out


def symbology(aim, text, result):
    """The contract's name for what the AIM identifier says, by biip's reading of it."""
    if aim is None:
        return {13: "ean13", 8: "ean8", 12: "upca"}.get(len(text), "unknown") if text.isdigit() else "unknown"
    ident = result.symbology_identifier
    if ident is None:
        return "unknown"
    if ident.iso_symbology == ISOSymbology.EAN_UPC:
        if ident.gs1_symbology == GS1Symbology.EAN_8:
            return "ean8"
        return {12: "upca", 8: "upce", 7: "upce", 6: "upce"}.get(len(text), "ean13")
    if ident.gs1_symbology == GS1Symbology.GS1_128:
        return "gs1-128"
    return ISO.get(ident.iso_symbology, "unknown")


def expectation(aim, text):
    result = parse((aim or "") + text)
    name = symbology(aim, text, result)
    expect = {"symbology": name, "check_digit_ok": None, "gs1": None, "gs1_error_ai": None, "upca": None}
    if name in ("ean13", "ean8", "upca"):
        expect["check_digit_ok"] = text.isdigit() and result.gtin is not None and result.gtin_error is None
    elif name == "upce":
        try:
            upc = Upc.parse(text)
            expect["upca"] = upc.as_upc_a()
            # biip checks an 8-digit UPC-E's check digit against its UPC-A's.
            expect["check_digit_ok"] = True if len(text) == 8 else None
        except Exception:
            expect["check_digit_ok"] = False if text.isdigit() or len(text) == 8 else False
    elif name == "itf" and len(text) == 14 and text.isdigit():
        try:
            Gtin.parse(text)
            expect["check_digit_ok"] = True
        except Exception:
            expect["check_digit_ok"] = False
    gs1 = aim in ("]C1", "]d2", "]Q3", "]e0") or GS in text
    # biip reads a Digital Link only without an AIM identifier before it.
    link = parse(text).gs1_digital_link_uri if text.lower().startswith("http") else None
    if gs1 or (link is not None and aim not in ("]C1", "]d2", "]Q3", "]e0")):
        strings = None
        if gs1:
            if result.gs1_message is not None:
                strings = result.gs1_message.element_strings
            elif result.gs1_message_error:
                expect["gs1_error_ai"] = failing_ai(result.gs1_message_error)
                if name not in ("ean13", "ean8", "upca", "upce", "itf") and expect["check_digit_ok"] is None:
                    expect["check_digit_ok"] = False
                if "check digit" in result.gs1_message_error:
                    expect["check_digit_ok"] = False
        else:
            strings = link.element_strings
        if strings is not None:
            bad = [e for e in strings if e.gtin_error or e.sscc_error or e.gln_error]
            if bad:
                expect["gs1_error_ai"] = bad[0].ai.ai
                expect["check_digit_ok"] = False
            else:
                values = {}
                for element in strings:
                    values.setdefault(element.ai.ai, element.value)
                expect["gs1"] = values
                key = values.get("01") or values.get("00")
                if key:
                    expect["check_digit_ok"] = True
    return expect


def failing_ai(message):
    """The AI biip names in its error ("... GS1 AI (17) pattern ..."), or None."""
    if "AI (" in message:
        return message.split("AI (", 1)[1].split(")", 1)[0]
    return None


def cases():
    rng = random.Random(2026)
    out = []

    def add(aim, text, note):
        out.append({"aim": aim, "text": text, "note": note, "expect": expectation(aim, text)})

    for _ in range(20):
        ean13 = number(rng, 1) + number(rng, 11)
        ean13 = ("4" + ean13[1:12]) + check_digit("4" + ean13[1:12])
        add("]E0", ean13, "EAN-13")
        add(None, ean13, "EAN-13 without an AIM identifier")
        for bad in corruptions(rng, ean13):
            add("]E0", bad, "EAN-13 misread")
    for _ in range(12):
        ean8 = number(rng, 7)
        ean8 += check_digit(ean8)
        add("]E4", ean8, "EAN-8")
        for bad in corruptions(rng, ean8)[:2]:
            add("]E4", bad, "EAN-8 misread")
    for _ in range(12):
        upca = "0" + number(rng, 10)
        upca += check_digit(upca)
        add("]E0", upca, "UPC-A")
        add(None, upca, "UPC-A without an AIM identifier")
        add("]E0", corruptions(rng, upca)[0], "UPC-A misread")
    for _ in range(15):
        six = number(rng, 6)
        system = rng.choice("01")
        upc_a = Upc.parse(system + six).as_upc_a()
        upce = system + six + upc_a[-1]
        add("]E0", upce, "UPC-E")
        add("]E0", upce[:-1] + str((int(upce[-1]) + 1) % 10), "UPC-E with a wrong check digit")
    for _ in range(10):
        itf = rng.choice("12345678") + number(rng, 12)
        itf += check_digit(itf)
        add("]I0", itf, "ITF-14 on a carton")
        add("]I1", corruptions(rng, itf)[0], "ITF-14 misread")
    add("]I0", "0123456789", "ITF of another length (no GTIN)")
    for text in ["ABC-123", "HELLO WORLD", "0123456789", "sku:99881", "2025-11-27"]:
        add("]C0", text, "Code 128")
        add("]A0", text.upper(), "Code 39")
        add("]G0", text, "Code 93")
        add("]L2", text, "PDF417")
        add("]z0", text, "Aztec")
        add("]d1", text, "Data Matrix")
        add("]Q1", text, "QR")
    for text in ["A12345B", "B9988776C", "C0001D"]:
        add("]F0", text, "Codabar")
    add("]Q1", "https://shop.example/opening-hours", "QR with a plain web address")
    add("]Q1", "WIFI:S:shop;T:WPA;P:secret;;", "QR with Wi-Fi settings")

    def gtin14():
        body = rng.choice("0123456789") + number(rng, 12)
        return body + check_digit(body)

    for _ in range(25):
        gtin = gtin14()
        lot = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(1, 12)))
        year, month, day = rng.randint(24, 35), rng.randint(1, 12), rng.randint(0, 28)
        date = f"{year:02d}{month:02d}{day:02d}"
        weight = f"{rng.randint(0, 999999):06d}"
        body = "01" + gtin + "17" + date + "10" + lot + GS + "3103" + weight
        aim = rng.choice(["]C1", "]d2", "]Q3", "]e0"])
        add(aim, body, "GS1 element string")
        add(aim, "01" + gtin + "21" + lot, "GS1 with a serial number")
        add(aim, "01" + corruptions(rng, gtin)[0] + "17" + date, "GS1 with a misread GTIN")
        add(aim, "01" + gtin + "17" + f"{year:02d}13{day:02d}", "GS1 with month 13")
        sscc = "3" + number(rng, 16)
        add("]C1", "00" + sscc + check_digit(sscc), "SSCC on a pallet label")
    add("]C1", "0104006381333931" + "10" + "A" * 25, "a lot too long: FNC1 missing")
    add("]C1", "99ABC", "company internal AI")
    add("]C1", "8110106141416543213500110000310123196000", "GS1 coupon (AI 8110)")
    add("]C1", "255" + "0614141" + "00001" + "2" + "1234", "Global Coupon Number (AI 255)")
    add(None, "0104006381333931" + GS + "10LOT", "GS1 with a GS and no AIM identifier")

    for _ in range(20):
        gtin = gtin14()
        short = gtin.lstrip("0") if rng.random() < 0.3 and len(gtin.lstrip("0")) in (8, 12, 13) else gtin
        host = rng.choice(["https://id.gs1.org", "https://shop.example/p", "http://example.com/a/b"])
        lot = "".join(rng.choice("ABC123") for _ in range(5))
        uri = f"{host}/01/{short}/10/{lot}?17=2{rng.randint(6, 9)}1231"
        add(rng.choice([None, "]Q1"]), uri, "GS1 Digital Link")
        add(None, f"{host}/01/{corruptions(rng, gtin)[0]}", "Digital Link with a misread GTIN")
    add(None, "https://id.gs1.org/01/09506000134352/21/12345?linkType=gs1:pip", "Digital Link, serial and a link type")
    add(None, "https://id.gs1.org/01/09506000134352/10/AB%2F12", "Digital Link with an escaped slash")
    add(None, "https://id.gs1.org/00/106141412345678908", "Digital Link for an SSCC")
    add(None, "https://id.gs1.org/414/9520123456788", "Digital Link for a GLN")

    for text in ["", "garbled", "\u00e9t\u00e9", "12345", "1234567890123456789", "EAN4006381333931"]:
        if text:
            add(None, text, "no AIM, not a retail code")
    return out


def main():
    table = cases()
    with open(OUT, "w") as f:
        json.dump(table, f, indent=0, ensure_ascii=False)
        f.write("\n")
    print(f"{len(table)} cases -> {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
