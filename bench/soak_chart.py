"""The RSS and open descriptors of hubbub over a soak run (hubbub-bench soak's JSON), as
one PNG.

    .venv/bin/python bench/soak_chart.py bench/results/soak.json docs/reliability/soak-rss.png
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(report_path, out_path):
    report = json.loads(Path(report_path).read_text())
    samples = report["samples"]
    minutes = [s["t"] / 60 for s in samples]
    rss = [s["rss_kb"] / 1024 for s in samples]
    fds = [s["fds"] for s in samples]
    clients = [s["clients"] for s in samples]
    verdict = report["rss"]

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    top.plot(minutes, rss, color="#2f6fdf", linewidth=1.2, label="RSS")
    top.axvline(verdict["warmup_s"] / 60, color="#999", linestyle="--", linewidth=0.8)
    top.text(
        verdict["warmup_s"] / 60,
        max(rss) * 0.98,
        " end of warm-up",
        color="#666",
        fontsize=8,
        va="top",
    )
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(0, max(rss) * 1.15)
    t = report["totals"]
    top.set_title(
        f"hubbub soak: {t['connections']:,} connections, {t['deliveries']:,} deliveries, "
        f"{t['lost']} lost; RSS slope {verdict['slope_kb_per_hour'] / 1024:+.1f} MiB/h after warm-up",
        fontsize=10,
    )
    top.grid(alpha=0.3)

    bottom.plot(minutes, fds, color="#e07b24", linewidth=1, label="server descriptors")
    bottom.plot(minutes, clients, color="#2a9d4b", linewidth=1, label="driver's connections")
    bottom.axhline(report["baseline_fds"], color="#999", linestyle=":", linewidth=0.8)
    bottom.set_xlabel("minutes")
    bottom.set_ylabel("count")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(alpha=0.3)

    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
