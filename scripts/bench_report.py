"""Turns the guest's BENCH lines (JSON, one per run) into results/bench.json
and a table of ratios. The median over rounds is reported per backend."""
import json
import statistics
import sys

METRICS = ["swapin_p50_us", "swapin_p99_us", "faults_per_s", "major_faults"]
runs = {}
for line in sys.stdin:
    line = line.strip()
    if line:
        r = json.loads(line)
        runs.setdefault(r["backend"], []).append(r)

records = []
for backend, rs in runs.items():
    for m in METRICS:
        records.append({"backend": backend, "metric": m,
                        "value": round(statistics.median(r[m] for r in rs), 2),
                        "rounds": len(rs)})
with open(sys.argv[1], "w") as f:
    json.dump(records, f, indent=1)

val = {(r["backend"], r["metric"]): r["value"] for r in records}
base = "fastswap-dram"
print(f"{'backend':<15}{'p50 us':>10}{'p99 us':>10}{'faults/s':>11}"
      f"{'major faults':>14}{'p50 vs ' + base:>22}")
for b in runs:
    p50 = val[(b, "swapin_p50_us")]
    ratio = p50 / val[(base, "swapin_p50_us")] if (base, "swapin_p50_us") in val else float("nan")
    print(f"{b:<15}{p50:>10.1f}{val[(b, 'swapin_p99_us')]:>10.1f}"
          f"{val[(b, 'faults_per_s')]:>11.0f}{val[(b, 'major_faults')]:>14.0f}{ratio:>21.2f}x")
print(f"wrote {sys.argv[1]}")
