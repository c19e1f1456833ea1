"""Turns the guest's BENCH lines (JSON, one per run, on stdin) into
OUTDIR/bench.json (records of backend, metric, value), OUTDIR/bench.md (the
summary tables and the targets) and OUTDIR/plots/*.png. Medians over rounds.
The raw-rdma lines (perftest's one-sided verbs on the same link, the link's
own limit) give their own table, and every fastswap-rdma figure that has a
raw counterpart is also given as a ratio to it.

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

# raw-rdma: the metrics each perftest tool gives (tests/scenarios/bench.sh).
RAW = "raw-rdma"
RAW_TOOLS = {"ib_read_lat": ["read_p50_us", "read_p99_us", "read_p999_us"],
             "ib_write_lat": ["write_p50_us", "write_p99_us", "write_p999_us"],
             "ib_read_bw": ["read_pages_per_s"],
             "ib_write_bw": ["write_pages_per_s"]}
RAW_TOOL_OF = {m: t for t, ms in RAW_TOOLS.items() for m in ms}
# The fastswap-rdma figures with a raw counterpart: (fastswap-rdma metric,
# order, threads, its name, the raw metric, its name). A swap-in is a
# synchronous 4 KiB RDMA read; swap-out is asynchronous (no per-page write
# latency is measured), so write_p50_us has no counterpart.
RAW_PAIRS = [
    ("swapin_p50_us", "random", 1, "random swap-in p50 µs", "read_p50_us", "RDMA read p50 µs"),
    ("swapin_p99_us", "random", 1, "random swap-in p99 µs", "read_p99_us", "RDMA read p99 µs"),
    ("swapin_p999_us", "random", 1, "random swap-in p99.9 µs", "read_p999_us", "RDMA read p99.9 µs"),
    ("swapin_p50_us", "seq", 1, "sequential swap-in p50 µs", "read_p50_us", "RDMA read p50 µs"),
    ("faults_per_s", "random", 1, "faults/s (1 thread)", "read_pages_per_s", "RDMA read pages/s"),
    ("faults_per_s", "random", 2, "faults/s (2 threads)", "read_pages_per_s", "RDMA read pages/s"),
    ("faults_per_s", "seq", 1, "sequential faults/s", "read_pages_per_s", "RDMA read pages/s"),
    ("swapout_pages_per_s", "random", 1, "swap-out pages/s", "write_pages_per_s", "RDMA write pages/s"),
]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def load(lines):
    lat, apps, raw = [], [], []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        (raw if "raw" in r else apps if "workload" in r else lat).append(r)
    return lat, apps, raw


def backends_of(runs):
    seen = {r["backend"] for r in runs}
    return [b for b in ORDER if b in seen] + sorted(seen - set(ORDER) - {"none"})


class Results:
    def __init__(self, lat, apps, raw=()):
        self.lat, self.apps, self.raw = lat, apps, list(raw)
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

    def raw_metric(self, m):
        """(median over the runs that gave m, None) or, when none did,
        (nan, why): the tool's error, or "not measured"."""
        tool = RAW_TOOL_OF[m]
        runs = [r for r in self.raw if r["raw"] == tool]
        ok = [r[m] for r in runs if m in r]
        if ok:
            return median(ok), None
        errors = [r["error"] for r in runs if "error" in r]
        return float("nan"), (errors[0] if errors else "not measured")

    def raw_ratios(self):
        """(fastswap-rdma figure, raw figure, ratio or None, why not) per
        pair of RAW_PAIRS, for the fastswap-rdma figures that were measured."""
        out = []
        for m, order, threads, name, raw_m, raw_name in RAW_PAIRS:
            fv = self.lat_metric("fastswap-rdma", m, order, threads)
            if fv != fv:
                continue
            rv, why = self.raw_metric(raw_m)
            if why is not None:
                why = "raw-rdma failed" if why != "not measured" else why
            out.append(((m, order, threads, name, fv), (raw_m, raw_name, rv),
                        fv / rv if why is None and rv > 0 else None, why))
        return out

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
        # raw-rdma: a figure, or value null and the tool's error.
        for tool, metrics in RAW_TOOLS.items():
            runs = [r for r in self.raw if r["raw"] == tool]
            if not runs:
                continue
            for m in metrics:
                v, why = self.raw_metric(m)
                r = {"backend": RAW, "metric": m, "tool": tool, "size": 4096,
                     "iterations": runs[0].get("iterations"),
                     "rounds": sum(1 for x in runs if m in x)}
                failed = sum(1 for x in runs if "error" in x)
                if failed:
                    r["failed_rounds"] = failed
                if why is None:
                    r["value"] = round(v, 2)
                else:
                    r["value"], r["error"] = None, why
                rec.append(r)
        for (m, order, threads, _, fv), (raw_m, _, rv), ratio, _ in self.raw_ratios():
            if ratio is not None:
                rec.append({"backend": "fastswap-rdma", "metric": "ratio_to_raw",
                            "of": m, "order": order, "threads": threads,
                            "raw_metric": raw_m, "value": round(ratio, 3)})


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
    L += raw_markdown(res)
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


def raw_markdown(res):
    """The raw-rdma section: nothing when the run had no raw-rdma."""
    if not res.raw:
        return []
    rounds = len({r["round"] for r in res.raw})
    iters = {t: r.get("iterations") for r in res.raw for t in [r["raw"]]}
    L = ["", "## The link's own limit: raw one-sided verbs (raw-rdma)", "",
         "perftest between the same two guests over the same link (rdma_cm, rxe0, "
         "4096-byte messages): `ib_read_lat` (waiting on completion events, `-e`) "
         "and `ib_write_lat` (polling: perftest has no `-e` for writes; it reports "
         "half the round trip of a write ping-pong) "
         f"({iters.get('ib_read_lat', '-')} iterations; the median is perftest's "
         "t_typical), `ib_read_bw` and `ib_write_bw` (polling; "
         f"{iters.get('ib_read_bw', '-')} iterations; pages/s = MsgRate in Mpps "
         f"x 10^6); median of {rounds} round(s).", "",
         "| backend | read p50 µs | read p99 µs | read p99.9 µs | write p50 µs "
         "| write p99 µs | read pages/s | write pages/s |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
    cols = ["read_p50_us", "read_p99_us", "read_p999_us", "write_p50_us",
            "write_p99_us", "read_pages_per_s", "write_pages_per_s"]
    cells, failures = [], {}
    for m in cols:
        v, why = res.raw_metric(m)
        if why is None:
            cells.append(fmt(v, 0 if m.endswith("pages_per_s") else 1))
        elif why == "not measured":
            cells.append("-")
        else:
            cells.append("**FAILED**")
            failures[RAW_TOOL_OF[m]] = why
    L.append(f"| {RAW} | " + " | ".join(cells) + " |")
    if failures:
        L += [""] + [f"- raw-rdma FAILED: {why}" for why in failures.values()]
    pairs = res.raw_ratios()
    L += ["", "### fastswap-rdma as a ratio of raw-rdma", ""]
    if not pairs:
        L.append("fastswap-rdma was not measured in this run.")
        return L
    L += ["Latency: how many times the link's own latency a fault takes (1.00x: "
          "nothing above the wire). Throughput: the fraction of the link's page "
          "rate reached (1.00x: the link's limit).", "",
          "| fastswap-rdma | raw-rdma | fastswap-rdma value | raw-rdma value | ratio |",
          "|---|---|---:|---:|---:|"]
    for (m, _, _, name, fv), (raw_m, raw_name, rv), ratio, why in pairs:
        digits = 0 if raw_m.endswith("pages_per_s") else 1
        L.append(f"| {name} | {raw_name} | {fmt(fv, digits)} "
                 f"| {'FAILED' if why == 'raw-rdma failed' else fmt(rv, digits)} "
                 f"| {why if ratio is None else f'{ratio:.2f}x'} |")
    L += ["", "A sequential fault is mostly served from pages readahead already "
          "brought in, so its latency can be below one read's; tails (p99, p99.9) "
          "on both sides are mostly the emulator's scheduling."]
    return L


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
        raw_p50, _ = res.raw_metric("read_p50_us")
        if raw_p50 == raw_p50:
            ax.axvline(raw_p50, color="black", ls="--", lw=1,
                       label="raw-rdma read p50 (link's limit)")
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
    panels = [("faults/s, random, 1 thread", "faults_per_s", "random", 1, "read_pages_per_s"),
              ("faults/s, random, 2 threads", "faults_per_s", "random", 2, "read_pages_per_s"),
              ("faults/s, sequential", "faults_per_s", "seq", 1, "read_pages_per_s"),
              ("swap-out pages/s", "swapout_pages_per_s", "random", 1, "write_pages_per_s")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4))
    for ax, (title, m, order, threads, raw_m) in zip(axes, panels):
        vals = [res.lat_metric(b, m, order, threads) for b in res.backends]
        ax.bar(range(len(vals)), [0 if v != v else v for v in vals],
               color=[COLORS.get(b, "#333") for b in res.backends])
        rv, _ = res.raw_metric(raw_m)
        if rv == rv:
            ax.axhline(rv, color="black", ls="--", lw=1,
                       label=f"raw-rdma {raw_m.split('_')[0]} pages/s")
            ax.legend(fontsize=7)
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
    lat, apps, raw = load(sys.stdin)
    if not lat and not apps and not raw:
        sys.exit("bench_report: no BENCH lines on stdin")
    res = Results(lat, apps, raw)
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
