#!/usr/bin/env python3
"""Writes Tests/TillCoreTests/Fixtures/gs1-cases.json: GS1 element strings, valid and corrupted,
with what biip (https://github.com/jodal/biip, an independent GS1 library) makes of them. The
Swift parser's table test checks it agrees. Needs biip: pip install biip.

    python3 scripts/make-gs1-cases.py
"""
import json
import os
import random

from biip.gln import Gln
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.sscc import Sscc

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "TillCoreTests", "Fixtures", "gs1-cases.json")
GS = "\x1d"


def gtin14(random_state):
    body = "".join(random_state.choice("0123456789") for _ in range(13))
    weights = [3, 1] * 7
    total = sum(int(d) * w for d, w in zip(reversed(body), weights))
    return body + str((10 - total % 10) % 10)


def with_check_digit(body):
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def cases():
    rng = random.Random(42)
    texts = [
        "0104006381333931", "010400638133393117261231", "01040063813339311726123110LOT42",
        "0104006381333931" + "10ABC123" + GS + "21SERIAL99", "00340123450000000007",
        "010400638133393131030012503922499", "0109501101530003" + "3102001500" + "15270131",
        "0109501101530003" + "17270100", "(01)04006381333931(17)261231(10)LOT42",
        "]C10104006381333931", "]d2" + "0104006381333931" + "21ABC" + GS + "10XYZ",
        "0104006381333932",  # wrong check digit
        "01040063813339",  # too short
        "99ABC", "91SOMETHING" + GS + "92ELSE", "8200https://example.com/p",
        "0104006381333931" + "10" + "A" * 25,  # lot too long: missing separator
        "0104006381333931" + "17261399",  # month 13
        "4145790000000008", "4105790000000001",  # GLNs with a wrong check digit
        "00" + with_check_digit("34012345000000000"), "414" + with_check_digit("579000000000"),
        "410" + with_check_digit("579000000000") + "0104006381333931",
    ]
    for _ in range(200):
        gtin = gtin14(rng)
        parts = ["01" + gtin]
        if rng.random() < 0.5:
            parts.append("17" + "%02d%02d%02d" % (rng.randint(20, 35), rng.randint(1, 12), rng.randint(1, 28)))
        if rng.random() < 0.5:
            parts.append("310%d%06d" % (rng.randint(0, 5), rng.randint(0, 999999)))
        variable = rng.random() < 0.6
        if variable:
            parts.append("10" + "".join(rng.choice("ABCDEFGHJK0123456789") for _ in range(rng.randint(1, 20))) + GS)
            parts.append("21" + "".join(rng.choice("abcXYZ0123456789") for _ in range(rng.randint(1, 20))))
        text = "".join(parts)
        if rng.random() < 0.15:  # corrupt one digit of the GTIN
            i = rng.randint(2, 15)
            text = text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]
        texts.append(text)
    for text in texts:
        try:
            # The AIM symbology identifier is the scanner's, not part of the element string;
            # the human-readable form with (AI)s is biip's parse_hri.
            body = text[3:] if text.startswith("]") else text
            message = GS1Message.parse_hri(body) if body.startswith("(") else GS1Message.parse(body)
            values = {}
            for element in message.element_strings:
                values.setdefault(element.ai.ai, element.value)
            # biip parses the message without checking SSCC and GLN check digits; check them,
            # and the GTINs', as GS1 requires.
            gtin_ok = True
            for element in message.element_strings:
                checker = {"01": Gtin, "02": Gtin, "03": Gtin, "00": Sscc}.get(element.ai.ai)
                if element.ai.ai in ("410", "411", "412", "413", "414", "415", "416", "417"):
                    checker = Gln
                if checker is not None:
                    try:
                        checker.parse(element.value)
                    except Exception:
                        gtin_ok = False
            yield {"text": text, "valid": gtin_ok, "values": values if gtin_ok else None}
        except Exception:
            yield {"text": text, "valid": False, "values": None}


def main():
    table = list(cases())
    with open(OUT, "w") as f:
        json.dump({"source": "biip %s (scripts/make-gs1-cases.py)" % __import__("biip").__version__, "cases": table}, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("wrote %d cases (%d valid) to %s" % (len(table), sum(c["valid"] for c in table), os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
