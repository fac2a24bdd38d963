#!/usr/bin/env python3
"""Splink 5 (DuckDB) on the same records, as the state-of-the-art peer: a Fellegi-Sunter
model trained on the data itself (u by random sampling, m by expectation maximisation),
pairwise predictions, then connected components at a threshold. Splink has no default
threshold; this script tries a range and keeps the one with the best pairwise F1 against
the truth, so Splink is scored at its best (tuned to this data set, which till-crm is not).

    splink_peer.py records.csv truth.csv clusters.csv [--region GB]

Run it in a virtual environment with `splink==5.0.0` (Benchmarks/identity/bench.sh makes one);
it is not a dependency of the project. Prints the thresholds tried and the time taken
(training, prediction and clustering; Python start-up and imports not counted).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402  (the scorer beside this file)

CALLING = {"GB": "44", "DE": "49", "FR": "33", "PL": "48", "CZ": "420", "GR": "30", "IT": "39", "ES": "34", "IE": "353", "NL": "31"}


def main():
    parser = argparse.ArgumentParser(description="Splink 5 peer, at its best threshold.")
    parser.add_argument("records")
    parser.add_argument("truth")
    parser.add_argument("clusters")
    parser.add_argument("--region", default="GB")
    args = parser.parse_args()

    con = duckdb.connect()
    code = CALLING[args.region]
    # The cleaning a Splink user does first (the same simple normalisation as the exact-match
    # peer): names lower-cased without accents, emails lower-cased, phones to +digits with the
    # shop's country code, postcodes upper-cased without spaces, cards without spaces.
    con.execute(f"""
        CREATE TABLE records AS
        WITH raw AS (SELECT * FROM read_csv('{args.records}', header = true, all_varchar = true))
        SELECT
            record_id AS unique_id,
            nullif(lower(strip_accents(trim(given_name))), '') AS given_name,
            nullif(lower(strip_accents(trim(family_name))), '') AS family_name,
            nullif(lower(trim(email)), '') AS email,
            CASE
                WHEN phone IS NULL OR length(regexp_replace(phone, '[^0-9]', '', 'g')) < 6 THEN NULL
                WHEN trim(phone) LIKE '+%' THEN '+' || regexp_replace(phone, '[^0-9]', '', 'g')
                WHEN regexp_replace(phone, '[^0-9]', '', 'g') LIKE '00%' THEN '+' || substr(regexp_replace(phone, '[^0-9]', '', 'g'), 3)
                WHEN regexp_replace(phone, '[^0-9]', '', 'g') LIKE '0%' THEN '+{code}' || substr(regexp_replace(phone, '[^0-9]', '', 'g'), 2)
                ELSE '+{code}' || regexp_replace(phone, '[^0-9]', '', 'g')
            END AS phone,
            nullif(upper(regexp_replace(loyalty_card, '\\s', '', 'g')), '') AS loyalty_card,
            nullif(upper(regexp_replace(postcode, '\\s', '', 'g')), '') AS postcode
        FROM raw
    """)
    started = time.perf_counter()
    db_api = DuckDBAPI(connection=con)
    records = db_api.register("records")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ForenameSurnameComparison("given_name", "family_name"),
            cl.EmailComparison("email"),
            cl.LevenshteinAtThresholds("phone", [1]),
            cl.ExactMatch("loyalty_card"),
            cl.ExactMatch("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("loyalty_card"),
            block_on("given_name", "family_name"),
            block_on("family_name", "postcode"),
            block_on("substr(email, 1, 6)"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(records, settings, log_level=None)
    # Splink's recommended sequence: the prior from rules that are near-certain matches, u from
    # random pairs, then m by EM in sessions blocked on different fields, so that every
    # comparison is trained in at least one session where it is not the blocking field.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("loyalty_card"), block_on("phone")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for rule in [block_on("email"), block_on("phone"), block_on("loyalty_card"), block_on("given_name", "family_name")]:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.05)
    trained = time.perf_counter()

    person, cases = score.read_truth(args.truth)
    best = None
    for threshold in [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]:
        t0 = time.perf_counter()
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold_match_probability=threshold)
        rows = clustered.as_duckdbpyrelation().select("unique_id, cluster_id").fetchall()
        elapsed = time.perf_counter() - t0
        clusters = {str(record): str(cluster) for record, cluster in rows}
        result = score.score(person, cases, clusters)
        print(f"splink threshold {threshold}: pair F1 {result['pair_f1']:.4f}, B-cubed F1 {result['bcubed_f1']:.4f}, "
              f"false merges {100 * result['false_merge_share']:.2f}%", file=sys.stderr)
        if best is None or result["pair_f1"] > best[1]["pair_f1"]:
            best = (threshold, result, clusters, elapsed)
    threshold, result, clusters, cluster_seconds = best
    with open(args.clusters, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["record_id", "customer"])
        for record in person:
            writer.writerow([record, clusters.get(record, "unclustered:" + record)])
    print(f"splink 5.0.0: best threshold {threshold}; {trained - started + cluster_seconds:.2f} s "
          f"(training and prediction {trained - started:.2f} s, clustering {cluster_seconds:.2f} s)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
