#!/usr/bin/env python3
"""Scores a clustering of records against the truth population.py wrote.

    score.py truth.csv clusters.csv [--name NAME] [--json]

clusters.csv has a header and two columns, record_id and the cluster it was put in (the
customer id `till-crm import --clusters-out` writes). A record of the truth missing from the
clusters (a row the resolver refused) counts as a cluster of its own, and is reported.

Figures, each as precision, recall and F1 where that applies:
- pairwise: over all pairs of records, "same cluster" against "same person";
- B-cubed: per record, the share of its cluster that is its person (precision) and the share
  of its person that is in its cluster (recall), averaged over records;
- false merges: the share of clusters with more than one record that hold more than one person;
- people split: the share of people with more than one record whose records are in more than
  one cluster;
- per hard case (households, twins, recycled numbers, same-name strangers): the pairs of
  *different* people of that case put together; and for the joins a resolver must make
  (nicknames, aliases, typos, replacement cards, changed emails, accents, national phones):
  the share of such records in their person's main cluster.
Standard library only.
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import sys


def read_truth(path):
    person, cases = {}, {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            person[row["record_id"]] = row["person"]
            cases[row["record_id"]] = set(row["cases"].split())
    return person, cases


def read_clusters(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {row["record_id"]: row["customer"] if "customer" in row else row["cluster"] for row in csv.DictReader(f)}


def pairs(groups):
    return sum(n * (n - 1) // 2 for n in groups)


def f1(p, r):
    return 2 * p * r / (p + r) if p + r else 0.0


SEPARATE = ["household", "twin", "recycled_number", "same_name"]
JOIN = ["nickname", "gmail_alias", "email_typo", "name_typo", "phone_typo", "replacement_card", "changed_email", "accents",
        "national_phone", "initial", "swapped_names", "moved"]


def score(person, cases, cluster):
    missing = [r for r in person if r not in cluster]
    cluster = dict(cluster)
    for r in missing:
        cluster[r] = "unresolved:" + r
    records = list(person)
    by_cluster = collections.defaultdict(list)
    by_person = collections.defaultdict(list)
    for r in records:
        by_cluster[cluster[r]].append(r)
        by_person[person[r]].append(r)
    # Pairwise: true positives are pairs sharing both cluster and person.
    joint = collections.Counter((cluster[r], person[r]) for r in records)
    tp = pairs(joint.values())
    predicted = pairs(len(v) for v in by_cluster.values())
    actual = pairs(len(v) for v in by_person.values())
    pair_p = tp / predicted if predicted else 1.0
    pair_r = tp / actual if actual else 1.0
    # B-cubed.
    bp = br = 0.0
    for r in records:
        both = joint[(cluster[r], person[r])]
        bp += both / len(by_cluster[cluster[r]])
        br += both / len(by_person[person[r]])
    bp /= len(records)
    br /= len(records)
    multi = [members for members in by_cluster.values() if len(members) > 1]
    false_merges = sum(1 for members in multi if len({person[r] for r in members}) > 1)
    people_multi = [rs for rs in by_person.values() if len(rs) > 1]
    split = sum(1 for rs in people_multi if len({cluster[r] for r in rs}) > 1)
    # Hard cases that must stay apart: pairs of different people of the case in one cluster.
    separate = {}
    for case in SEPARATE:
        holders = collections.defaultdict(set)
        for r in records:
            if case in cases[r]:
                holders[cluster[r]].add(person[r])
        people_in_case = {person[r] for r in records if case in cases[r]}
        wrongly = sum(len(p) * (len(p) - 1) // 2 for p in holders.values())
        merged_people = {p for ps in holders.values() if len(ps) > 1 for p in ps}
        separate[case] = {"people": len(people_in_case), "people_merged_with_another": len(merged_people), "wrong_pairs": wrongly}
    # Joins: a record of the case in the cluster holding most of its person's records.
    main_cluster = {}
    for p, rs in by_person.items():
        main_cluster[p] = collections.Counter(cluster[r] for r in rs).most_common(1)[0][0]
    join = {}
    for case in JOIN:
        with_case = [r for r in records if case in cases[r] and len(by_person[person[r]]) > 1]
        joined = sum(1 for r in with_case if cluster[r] == main_cluster[person[r]])
        join[case] = {"records": len(with_case), "joined": joined}
    return {
        "records": len(records), "people": len(by_person), "clusters": len(by_cluster), "unresolved": len(missing),
        "pair_precision": pair_p, "pair_recall": pair_r, "pair_f1": f1(pair_p, pair_r),
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": f1(bp, br),
        "multi_record_clusters": len(multi), "false_merges": false_merges,
        "false_merge_share": false_merges / len(multi) if multi else 0.0,
        "people_with_several_records": len(people_multi), "people_split": split,
        "people_split_share": split / len(people_multi) if people_multi else 0.0,
        "separate": separate, "join": join,
    }


def report(name, s):
    lines = [f"{name}: {s['records']} records of {s['people']} people -> {s['clusters']} clusters"
             + (f" ({s['unresolved']} records refused, each counted alone)" if s["unresolved"] else "")]
    lines.append(f"  pairwise  P {s['pair_precision']:.4f}  R {s['pair_recall']:.4f}  F1 {s['pair_f1']:.4f}")
    lines.append(f"  B-cubed   P {s['bcubed_precision']:.4f}  R {s['bcubed_recall']:.4f}  F1 {s['bcubed_f1']:.4f}")
    lines.append(f"  false merges {s['false_merges']} of {s['multi_record_clusters']} multi-record clusters ({100 * s['false_merge_share']:.2f}%)")
    lines.append(f"  people split {s['people_split']} of {s['people_with_several_records']} ({100 * s['people_split_share']:.2f}%)")
    lines.append("  kept apart: " + ", ".join(
        f"{case} {v['people'] - v['people_merged_with_another']}/{v['people']}" for case, v in s["separate"].items()))
    lines.append("  joined:     " + ", ".join(f"{case} {v['joined']}/{v['records']}" for case, v in s["join"].items() if v["records"]))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description="Score clusters against the truth.")
    parser.add_argument("truth")
    parser.add_argument("clusters")
    parser.add_argument("--name", default="clusters")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    person, cases = read_truth(args.truth)
    result = score(person, cases, read_clusters(args.clusters))
    print(json.dumps(result) if args.json else report(args.name, result))


if __name__ == "__main__":
    sys.exit(main())
