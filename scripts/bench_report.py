"""Turns the guest's BENCH lines (JSON, one per run, on stdin) into
OUTDIR/bench.json (records of backend, metric, value), OUTDIR/bench.md (the
summary tables and the targets) and OUTDIR/plots/*.png. Medians over rounds.

    python3 scripts/bench_report.py OUTDIR < bench-lines
"""
import json
import math
import os
import statistics
import sys

ORDER = ["fastswap-rdma", "fastswap-dram", "nvmeof-rdma", "nbd", "zram", "disk"]
COLORS = {"fastswap-rdma": "#d62728", "fastswap-dram": "#ff7f0e",
          "nvmeof-rdma": "#1f77b4", "nbd": "#9467bd", "zram": "#2ca02c",
          "disk": "#7f7f7f"}
APPS = ["quicksort", "kvstore", "bfs"]
# Relative change treated as noise when judging reclaim offload.
NOISE = 0.10


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def load(lines):
    lat, apps = [], []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        (apps if "workload" in r else lat).append(r)
    return lat, apps


def backends_of(runs):
    seen = {r["backend"] for r in runs}
    return [b for b in ORDER if b in seen] + sorted(seen - set(ORDER) - {"none"})


class Results:
    def __init__(self, lat, apps):
        self.lat, self.apps = lat, apps
        self.backends = backends_of(lat + apps)
        self.records = []
        self.base = {a: median([r["seconds"] for r in apps
                                if r["workload"] == a and r["backend"] == "none"])
                     for a in APPS}
        self.ratios = sorted({float(r["local_ratio"]) for r in apps
                              if r["backend"] != "none"}, reverse=True)

    def latency_runs(self, b, order, threads):
        return [r for r in self.lat if r["backend"] == b and r["order"] == order
                and r["threads"] == threads]

    def lat_metric(self, b, metric, order="random", threads=1):
        return median([r[metric] for r in self.latency_runs(b, order, threads)])

    def app_seconds(self, b, a, ratio, offload="off"):
        return median([r["seconds"] for r in self.apps if r["backend"] == b
                       and r["workload"] == a and float(r["local_ratio"]) == ratio
                       and r.get("offload", "off") == offload])

    def slowdown(self, b, a, ratio, offload="off"):
        return self.app_seconds(b, a, ratio, offload) / self.base[a]

    def build_records(self):
        rec = self.records
        for b in self.backends:
            for order in ("random", "seq"):
                for threads in (1, 2):
                    runs = self.latency_runs(b, order, threads)
                    if not runs:
                        continue
                    metrics = ["faults_per_s"] if threads == 2 else [
                        "swapin_p50_us", "swapin_p99_us", "swapin_p999_us",
                        "faults_per_s", "swapout_pages_per_s", "major_faults"]
                    for m in metrics:
                        rec.append({"backend": b, "metric": m, "order": order,
                                    "threads": threads,
                                    "value": round(median([r[m] for r in runs]), 2),
                                    "rounds": len(runs)})
            for a in APPS:
                for ratio in self.ratios:
                    for off in ("off", "on"):
                        s = self.app_seconds(b, a, ratio, off)
                        if s != s:  # no such run
                            continue
                        rounds = sum(1 for r in self.apps if r["backend"] == b
                                     and r["workload"] == a and float(r["local_ratio"]) == ratio
                                     and r.get("offload", "off") == off)
                        common = {"backend": b, "workload": a, "local_ratio": ratio,
                                  "offload": off, "rounds": rounds}
                        rec.append({**common, "metric": "run_s", "value": round(s, 3)})
                        rec.append({**common, "metric": "slowdown",
                                    "value": round(s / self.base[a], 3)})
        for a in APPS:
            rec.append({"backend": "none", "workload": a, "local_ratio": 1.0,
                        "metric": "run_s", "value": round(self.base[a], 3)})


def fmt(v, digits=1):
    return "-" if v != v else f"{v:.{digits}f}"


def ratio_check(num, den, limit):
    if num != num or den != den:
        return "not measured", None
    return f"{num / den:.2f}x", num / den <= limit


def targets(res):
    out = []
    p50 = {b: res.lat_metric(b, "swapin_p50_us") for b in res.backends}

    def add(text, value, ok):
        out.append((text, value, "not measured" if ok is None else ("met" if ok else "NOT met")))

    for other in ("nvmeof-rdma", "nbd"):
        v, ok = ratio_check(p50.get("fastswap-rdma", float("nan")), p50.get(other, float("nan")), 0.5)
        add(f"fastswap-rdma swap-in p50 <= 1/2 of {other}", v, ok)
    v, ok = ratio_check(p50.get("fastswap-dram", float("nan")), p50.get("zram", float("nan")), 0.5)
    add("fastswap-dram swap-in p50 <= 1/2 of zram", v, ok)
    for a in APPS:
        fr = res.slowdown("fastswap-rdma", a, 0.5)
        others = {o: res.slowdown(o, a, 0.5) for o in ("nvmeof-rdma", "nbd")}
        measured = [x for x in [fr, *others.values()] if x == x]
        ok = None if len(measured) < 3 else all(fr < x for x in others.values())
        add(f"{a} at 50%: fastswap-rdma slowdown below NVMe-oF and NBD",
            f"{fmt(fr, 2)} vs {fmt(others['nvmeof-rdma'], 2)} / {fmt(others['nbd'], 2)}", ok)
    for b in ("fastswap-rdma", "fastswap-dram"):
        changes = {}
        for a in APPS:
            off, on = res.slowdown(b, a, 0.5, "off"), res.slowdown(b, a, 0.5, "on")
            if off == off and on == on:
                changes[a] = on / off - 1
        if not changes:
            continue
        ok = any(c < 0 for c in changes.values()) and all(c <= NOISE for c in changes.values())
        add(f"{b}: reclaim offload lowers one slowdown at 50%, raises none > {NOISE:.0%}",
            ", ".join(f"{a} {c:+.0%}" for a, c in changes.items()), ok)
    return out


def markdown(res):
    L = ["# Benchmark summary", "",
         "Generated by `scripts/bench` (software-emulated guests: compare ratios, "
         "not absolute numbers).", "",
         "## Swap-in fault latency and throughput", "",
         "| backend | random p50 µs | p99 µs | p99.9 µs | seq p50 µs | faults/s (1 thread) "
         "| faults/s (2 threads) | seq faults/s | swap-out pages/s |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for b in res.backends:
        m = res.lat_metric
        L.append(f"| {b} | {fmt(m(b, 'swapin_p50_us'))} | {fmt(m(b, 'swapin_p99_us'))} "
                 f"| {fmt(m(b, 'swapin_p999_us'))} | {fmt(m(b, 'swapin_p50_us', 'seq'))} "
                 f"| {fmt(m(b, 'faults_per_s'), 0)} | {fmt(m(b, 'faults_per_s', 'random', 2), 0)} "
                 f"| {fmt(m(b, 'faults_per_s', 'seq'), 0)} "
                 f"| {fmt(m(b, 'swapout_pages_per_s'), 0)} |")
    L += ["", "## Application slowdown (run time / run time with no limit)", "",
          "Local ratio = the cgroup's memory.high as a fraction of the application's "
          "peak memory with no limit. Baseline run times (no limit): "
          + ", ".join(f"{a} {fmt(res.base[a], 2)} s" for a in APPS) + ".", "",
          "| backend | " + " | ".join(f"{a} {int(r * 100)}%" for a in APPS for r in res.ratios) + " |",
          "|---|" + "---:|" * (len(APPS) * len(res.ratios))]
    for b in res.backends:
        L.append(f"| {b} | " + " | ".join(fmt(res.slowdown(b, a, r), 2)
                                          for a in APPS for r in res.ratios) + " |")
    off_rows = [b for b in res.backends if any(
        res.app_seconds(b, a, 0.5, "on") == res.app_seconds(b, a, 0.5, "on") for a in APPS)]
    if off_rows:
        L += ["", "## Reclaim offload at 50% local memory (slowdown, off → on)", "",
              "| backend | " + " | ".join(APPS) + " |", "|---|" + "---:|" * len(APPS)]
        for b in off_rows:
            L.append(f"| {b} | " + " | ".join(
                f"{fmt(res.slowdown(b, a, 0.5), 2)} → {fmt(res.slowdown(b, a, 0.5, 'on'), 2)}"
                for a in APPS) + " |")
    L += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    L += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(res)]
    return "\n".join(L) + "\n"


def plots(res, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")

    def log_axis(axis):
        # Log scale with plain numbers (1, 2, 5, 10) rather than powers of 10.
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5)
            else ""))

    os.makedirs(outdir, exist_ok=True)
    written = []

    # Latency CDFs: one panel per access order.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, order in zip(axes, ("random", "seq")):
        for b in res.backends:
            runs = res.latency_runs(b, order, 1)
            if not runs:
                continue
            pts = [statistics.median(col) for col in zip(*(r["cdf_us"] for r in runs))]
            probs = [i / 100 for i in range(1, 100)] + [0.995, 0.999, 0.9999, 1.0]
            ax.plot([max(p, 0.1) for p in pts], probs[:len(pts)], label=b,
                    color=COLORS.get(b), lw=1.8)
        ax.set_xscale("log")
        log_axis(ax.xaxis)
        ax.set_xlabel("swap-in fault latency (µs, log scale)")
        ax.set_ylabel("fraction of faults")
        ax.set_title(f"{'Random' if order == 'random' else 'Sequential'} access")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    written.append(os.path.join(outdir, "latency_cdf.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    # Slowdown against local memory ratio, one panel per workload.
    fig, axes = plt.subplots(1, len(APPS), figsize=(13, 4))
    xs = [1.0] + res.ratios
    for ax, a in zip(axes, APPS):
        for b in res.backends:
            ys = [1.0] + [res.slowdown(b, a, r) for r in res.ratios]
            ax.plot([x * 100 for x in xs], ys, marker="o", label=b, color=COLORS.get(b))
        ax.set_xlim(105, min(xs) * 100 - 5)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_xlabel("local memory (% of working set)")
        ax.set_ylabel("slowdown (log scale)")
        ax.set_title(a)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    written.append(os.path.join(outdir, "slowdown.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    # Throughput bars.
    panels = [("faults/s, random, 1 thread", "faults_per_s", "random", 1),
              ("faults/s, random, 2 threads", "faults_per_s", "random", 2),
              ("faults/s, sequential", "faults_per_s", "seq", 1),
              ("swap-out pages/s", "swapout_pages_per_s", "random", 1)]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4))
    for ax, (title, m, order, threads) in zip(axes, panels):
        vals = [res.lat_metric(b, m, order, threads) for b in res.backends]
        ax.bar(range(len(vals)), [0 if v != v else v for v in vals],
               color=[COLORS.get(b, "#333") for b in res.backends])
        ax.set_xticks(range(len(vals)), res.backends, rotation=35, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    written.append(os.path.join(outdir, "throughput.png"))
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    # Reclaim offload.
    bs = [b for b in ("fastswap-rdma", "fastswap-dram") if b in res.backends]
    if bs:
        fig, axes = plt.subplots(1, len(bs), figsize=(5.5 * len(bs), 3.8), squeeze=False)
        for ax, b in zip(axes[0], bs):
            w = 0.38
            for k, (off, color) in enumerate((("off", "#999999"), ("on", COLORS[b]))):
                ys = [res.slowdown(b, a, 0.5, off) for a in APPS]
                ax.bar([i + (k - 0.5) * w for i in range(len(APPS))],
                       [0 if y != y else y for y in ys], w, label=f"offload {off}", color=color)
            ax.set_xticks(range(len(APPS)), APPS)
            ax.set_ylabel("slowdown at 50% local memory")
            ax.set_title(b)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        written.append(os.path.join(outdir, "reclaim_offload.png"))
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    lat, apps = load(sys.stdin)
    if not lat and not apps:
        sys.exit("bench_report: no BENCH lines on stdin")
    res = Results(lat, apps)
    res.build_records()
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "bench.json"), "w") as f:
        json.dump(res.records, f, indent=1)
    md = markdown(res)
    with open(os.path.join(outdir, "bench.md"), "w") as f:
        f.write(md)
    print(md)
    for p in plots(res, os.path.join(outdir, "plots")):
        print(f"wrote {p}")
    print(f"wrote {os.path.join(outdir, 'bench.json')} and {os.path.join(outdir, 'bench.md')}")


if __name__ == "__main__":
    main()
