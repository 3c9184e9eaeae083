"""Print the micro benchmarks of one run as ratios, and check the targets of issue #2.

usage: python bench/report.py BENCH_JSON
Exit status 0 whether or not a target is missed: the figures are the product; a missed
target is printed as MISSED so it is seen, not hidden behind a red build.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

# (group, numerator impl, denominator impl, bound, how the bound reads)
TARGETS = [
    ("verify HS256", "pyjwt", "fastgate-cold", 8.0, "cold verify >= 8x faster than PyJWT"),
    ("verify HS256", "pyjwt", "fastgate-cached", 100.0, "cached verify >= 100x faster than PyJWT"),
] + [
    (f"verify {alg}", "raw", "fastgate-cold", 1 / 1.2, "cold verify within 1.2x of raw crypto")
    for alg in ("RS256", "PS256", "ES256", "EdDSA")
]


def main(path: str) -> int:
    with open(path) as f:
        data = json.load(f)
    med: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        med[b["group"]][b["name"]] = b["stats"]["median"]
    machine = data.get("machine_info", {})
    print(f"\nmicro benchmarks, medians ({machine.get('cpu', {}).get('brand_raw', '?')}, "
          f"python {machine.get('python_version', '?')})")
    for group in sorted(med):
        rows = med[group]
        base = rows.get("pyjwt") or rows.get("stdlib") or rows.get("json.dumps")
        print(f"\n  {group}")
        for name, t in sorted(rows.items(), key=lambda kv: kv[1]):
            ratio = f"{base / t:8.1f}x vs peer" if base else ""
            raw = rows.get("raw")
            extra = f"  {t / raw:5.2f}x of raw" if raw and name.startswith("fastgate") else ""
            print(f"    {name:18s} {t * 1e6:10.3f} us  {ratio}{extra}")
    print("\n  targets (issue #2)")
    for group, num, den, bound, text in TARGETS:
        if group not in med or num not in med[group] or den not in med[group]:
            print(f"    {group:14s} {text:45s} not measured")
            continue
        ratio = med[group][num] / med[group][den]
        ok = ratio >= bound
        shown = f"{ratio:.1f}x" if bound >= 1 else f"{1 / ratio:.2f}x of raw"
        print(f"    {group:14s} {text:45s} {shown:>14s}  {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
