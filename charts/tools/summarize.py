#!/usr/bin/env python3
"""Prints the Markdown table of rendered objects by kind and namespace that charts/README.md
carries for the prod render. usage: summarize.py RENDERED.yaml

charts/test.sh compares it with the table between the markers in README.md, so the docs
cannot drift from the chart.
"""
import sys
from collections import Counter

import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
counts = Counter()
for d in docs:
    ns = d["metadata"].get("namespace") or ("(cluster)" if d["kind"] != "Namespace" else "(cluster)")
    counts[(d["kind"], ns)] += 1
namespaces = sorted({ns for _, ns in counts}, key=lambda n: (n == "(cluster)", n))
kinds = sorted({k for k, _ in counts})
print("| kind | " + " | ".join(namespaces) + " | total |")
print("|---|" + "---:|" * (len(namespaces) + 1))
for k in kinds:
    row = [str(counts[(k, ns)] or "") for ns in namespaces]
    print(f"| {k} | " + " | ".join(row) + f" | {sum(counts[(k, ns)] for ns in namespaces)} |")
totals = [str(sum(counts[(k, ns)] for k in kinds)) for ns in namespaces]
print("| **total** | " + " | ".join(totals) + f" | **{len(docs)}** |")
