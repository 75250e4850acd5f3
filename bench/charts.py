"""Charts of a hubbub-bench JSON report: throughput, latency and server CPU per server and
scenario, as PNG files.

    .venv/bin/python bench/charts.py bench/results/latest.json docs/benchmarks
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

COLORS = {
    "hubbub": "#2f6fdf",
    "nchan": "#2a9d4b",
    "sockudo": "#e07b24",
    "centrifugo": "#8e44ad",
}


def load(path):
    report = json.loads(Path(path).read_text())
    scenarios = []
    for row in report["summary"]:
        if row["scenario"] not in scenarios:
            scenarios.append(row["scenario"])
    rows = {
        s: [r for r in report["summary"] if r["scenario"] == s and r["failed"] < r["runs"]]
        for s in scenarios
    }
    return report, scenarios, rows


def short(v):
    """A latency label: whole milliseconds from 10 up, two significant digits below."""
    return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def bars(ax, rows, values, fmt="{:,.0f}"):
    names = [r["target"] for r in rows]
    colors = [COLORS.get(n, "#777777") for n in names]
    drawn = ax.bar(names, values, color=colors)
    for rect, value in zip(drawn, values):
        ax.annotate(
            fmt.format(value),
            (rect.get_x() + rect.get_width() / 2, rect.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.margins(y=0.15)
    ax.set_ylim(bottom=0, top=max(max(values, default=0) * 1.15, 1))


def throughput(report, scenarios, rows, out):
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.6))
    axes = [axes] if len(scenarios) == 1 else axes
    for ax, scenario in zip(axes, scenarios):
        rs = rows[scenario]
        if not rs:
            continue
        unit = rs[0]["headline"]
        better = "higher" if rs[0]["higher_is_better"] else "lower"
        bars(ax, rs, [r["headline_value"] for r in rs], "{:,.1f}" if unit.startswith("KiB") else "{:,.0f}")
        ax.set_title(f"{scenario}\n{unit} ({better} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"hubbub-bench: medians of {report['rounds']} rounds", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)


def latency(report, scenarios, rows, out):
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.6))
    axes = [axes] if len(scenarios) == 1 else axes
    for ax, scenario in zip(axes, scenarios):
        rs = rows[scenario]
        if not rs:
            continue
        names = [r["target"] for r in rs]
        x = range(len(names))
        width = 0.38
        p50 = [max(r["median"]["latency"]["p50_ms"], 0.001) for r in rs]
        p99 = [max(r["median"]["latency"]["p99_ms"], 0.001) for r in rs]
        colors = [COLORS.get(n, "#777777") for n in names]
        ax.bar([i - width / 2 for i in x], p50, width, color=colors, alpha=0.55, label="p50")
        ax.bar([i + width / 2 for i in x], p99, width, color=colors, label="p99")
        for i, (a, b) in enumerate(zip(p50, p99)):
            ax.annotate(short(a), (i - width / 2, a), ha="center", va="bottom", fontsize=7)
            ax.annotate(short(b), (i + width / 2, b), ha="center", va="bottom", fontsize=7)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(list(x), names, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"{scenario}\npublish-to-receive ms, p50 | p99", fontsize=9)
        ax.margins(y=0.2)
    fig.suptitle("latency (log scale; lower is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def cpu(report, scenarios, rows, out):
    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.6))
    axes = [axes] if len(scenarios) == 1 else axes
    for ax, scenario in zip(axes, scenarios):
        rs = rows[scenario]
        if not rs:
            continue
        bars(ax, rs, [r["median"]["server_cpu_pct"] for r in rs], "{:.0f}%")
        ax.set_title(f"{scenario}\nserver CPU, % of one core", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("server CPU during the measured window (lower is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "cpu.png", dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: charts.py REPORT.json OUT_DIR")
    report, scenarios, rows = load(sys.argv[1])
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    throughput(report, scenarios, rows, out)
    latency(report, scenarios, rows, out)
    cpu(report, scenarios, rows, out)
    print(f"wrote {out}/throughput.png, latency.png, cpu.png")


if __name__ == "__main__":
    main()
