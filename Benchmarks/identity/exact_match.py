#!/usr/bin/env python3
"""The peer most POS systems are: records are one customer when they share a normalised
email, phone or loyalty card (and transitively so). No names, no scores.

    exact_match.py records.csv clusters.csv [--region GB]

Normalisation is the same as till-crm's where it is simple (emails trimmed and lower-cased,
cards without spaces and upper-cased); phones are reduced to their national significant digits
with the region's calling code, a close stand-in for E.164 without libphonenumber.
Standard library only.
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
import time

CALLING = {"GB": "44", "DE": "49", "FR": "33", "PL": "48", "CZ": "420", "GR": "30", "IT": "39", "ES": "34", "IE": "353", "NL": "31"}


def phone_key(raw: str, region: str) -> str | None:
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if len(digits) < 6:
        return None
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return "+" + CALLING[region] + digits[1:]
    return "+" + CALLING[region] + digits


class Union:
    def __init__(self):
        self.parent = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def main():
    parser = argparse.ArgumentParser(description="Exact-match clustering (email OR phone OR card).")
    parser.add_argument("records")
    parser.add_argument("clusters")
    parser.add_argument("--region", default="GB")
    args = parser.parse_args()
    started = time.perf_counter()
    union = Union()
    owner = {}
    with open(args.records, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        record = row["record_id"]
        union.find(record)
        keys = []
        if row["email"].strip():
            keys.append("e:" + row["email"].strip().lower())
        if row["phone"].strip():
            key = phone_key(row["phone"], args.region)
            if key:
                keys.append("p:" + key)
        if row["loyalty_card"].strip():
            keys.append("c:" + re.sub(r"\s", "", row["loyalty_card"]).upper())
        for key in keys:
            if key in owner:
                union.join(owner[key], record)
            else:
                owner[key] = record
    with open(args.clusters, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["record_id", "customer"])
        for row in rows:
            writer.writerow([row["record_id"], union.find(row["record_id"])])
    print(f"exact match: {len(rows)} records in {time.perf_counter() - started:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
