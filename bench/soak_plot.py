#!/usr/bin/env python3
"""Plots a soak CSV (bench/soak.rs): RSS of each replica and unary p99 over time, restarts
marked. Usage: soak_plot.py SOAK.csv OUT.png
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{src}: no samples")
    minutes = [float(r["t_s"]) / 60 for r in rows]
    fig, (rss, p99) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, dpi=80)
    for name, colour in (("a", "tab:blue"), ("b", "tab:orange")):
        # One line per process, so a restart shows as a break rather than a drop.
        segment_x, segment_y, pid = [], [], None
        for t, r in zip(minutes, rows):
            if float(r[f"{name}_rss_mib"]) == 0:
                continue  # sampled while the replica was restarting
            if r[f"{name}_pid"] != pid and segment_x:
                rss.plot(segment_x, segment_y, color=colour)
                segment_x, segment_y = [], []
            pid = r[f"{name}_pid"]
            segment_x.append(t)
            segment_y.append(float(r[f"{name}_rss_mib"]))
        rss.plot(segment_x, segment_y, color=colour, label=f"replica {name}")
    rss.set_ylabel("RSS (MiB)")
    rss.set_ylim(bottom=0)
    rss.legend(loc="lower right")
    rss.grid(alpha=0.3)

    timed = [(t, r) for t, r in zip(minutes, rows) if int(r["unary_calls"]) > 0]
    p99.plot([t for t, _ in timed], [float(r["unary_p99_ms"]) for _, r in timed],
             color="tab:red", label="p99")
    p99.plot([t for t, _ in timed], [float(r["unary_p50_ms"]) for _, r in timed],
             color="tab:gray", label="p50")
    p99.set_ylabel("unary latency (ms)")
    p99.set_xlabel("minutes")
    p99.set_ylim(bottom=0)
    p99.legend(loc="upper right")
    p99.grid(alpha=0.3)

    for t, r in zip(minutes, rows):
        if r["restarted"]:
            for axis in (rss, p99):
                axis.axvline(t, color="black", alpha=0.25, linestyle="--")
            rss.annotate(f"restart {r['restarted']}", (t, 0), fontsize=7, rotation=90,
                         va="bottom", ha="right")
    fig.suptitle("Flotilla soak: 2 replicas on PostgreSQL (per-sample p99; dashed: restarts)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
