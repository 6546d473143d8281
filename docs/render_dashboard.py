#!/usr/bin/env python3
"""Draws the gateway's Grafana dashboard to a PNG from a real Prometheus.

    render_dashboard.py --prometheus http://127.0.0.1:9099 --start UNIX --end UNIX \
        [--dashboard charts/datamind/files/dashboards/gateway.json] [--out docs/dashboard.png]

This is not Grafana (no Grafana server is available offline): it reads the dashboard JSON
(rows, panel titles, grid positions, units, PromQL targets and legends), evaluates every
target with Prometheus' own `query_range` API over the window, and draws each panel where
the grid puts it, in Grafana's dark style. What the panels show is therefore exactly what
the dashboard's queries return for that window. docs/dashboard_run.sh produces the data.
"""
import argparse
import json
import re
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

BG, PANEL, GRID, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
          "#96d98d", "#ffee52", "#ca95e5"]


def query_range(prom, expr, start, end, step, rate_interval):
    expr = expr.replace("$__rate_interval", rate_interval)
    qs = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{qs}", timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip() or "value"


def formatter(unit):
    def fmt(v, _pos=None):
        if unit == "s":
            if v == 0:
                return "0"
            if abs(v) < 1e-3:
                return f"{v * 1e6:.0f} µs"
            if abs(v) < 1:
                return f"{v * 1e3:.1f} ms"
            return f"{v:.2f} s"
        if unit == "percentunit":
            return f"{v * 100:.1f}%"
        if unit == "currencyUSD":
            return f"${v:.4g}"
        if abs(v) >= 1e6:
            s = f"{v / 1e6:.3g}M"
        elif abs(v) >= 1e3:
            s = f"{v / 1e3:.3g}k"
        else:
            s = f"{v:.3g}"
        return f"{s}/s" if unit == "reqps" else s
    return FuncFormatter(fmt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--end", type=float, required=True)
    ap.add_argument("--step", default="5")
    ap.add_argument("--rate-interval", default="30s")
    ap.add_argument("--dashboard", default="charts/datamind/files/dashboards/gateway.json")
    ap.add_argument("--out", default="docs/dashboard.png")
    ap.add_argument("--subtitle", default="")
    a = ap.parse_args()

    dash = json.load(open(a.dashboard))
    panels = dash["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_px = 30  # Grafana's grid row height
    width_px, height_px = 1800, rows * unit_px + 60
    fig = plt.figure(figsize=(width_px / 100, height_px / 100), dpi=100, facecolor=BG)
    fig.text(0.01, 1 - 20 / height_px, dash["title"], color=TEXT, fontsize=15, weight="bold", va="center")
    fig.text(0.99, 1 - 20 / height_px, a.subtitle, color=MUTED, fontsize=9, ha="right", va="center")
    top = 45

    def box(g, pad=4):
        x = g["x"] / 24 * width_px + pad
        y = top + g["y"] * unit_px + pad
        w = g["w"] / 24 * width_px - 2 * pad
        h = g["h"] * unit_px - 2 * pad
        return [x / width_px, 1 - (y + h) / height_px, w / width_px, h / height_px]

    empty = []
    for p in panels:
        g = p["gridPos"]
        if p["type"] == "row":
            l, b, w, h = box(g, pad=2)
            fig.text(l + 0.002, b + h / 2, p["title"], color=TEXT, fontsize=12, weight="bold", va="center")
            continue
        l, b, w, h = box(g)
        frame = fig.add_axes([l, b, w, h])
        frame.set_facecolor(PANEL)
        frame.set_xticks([]), frame.set_yticks([])
        for s in frame.spines.values():
            s.set_color(GRID)
        title_h = 24 / height_px
        ax = fig.add_axes([l + 62 / width_px, b + 30 / height_px,
                           w - 74 / width_px, h - title_h - 38 / height_px])
        fig.text(l + 0.004, b + h - title_h / 2 - 0.002, p["title"], color=TEXT, fontsize=9.5, va="center")
        ax.set_facecolor(PANEL)
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        n = 0
        t0 = a.start
        for t in p["targets"]:
            for series in query_range(a.prometheus, t["expr"], a.start, a.end, a.step, a.rate_interval):
                xs = [(float(ts) - t0) / 60 for ts, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ys = [0.0 if y != y else y for y in ys]  # NaN (no data in window) drawn as 0
                ax.plot(xs, ys, color=COLORS[n % len(COLORS)], linewidth=1.3,
                        label=legend(t.get("legendFormat", ""), series["metric"]))
                n += 1
        if n == 0:
            empty.append(p["title"])
            ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        ax.yaxis.set_major_formatter(formatter(unit))
        ax.set_xlim(0, (a.end - a.start) / 60)
        ax.set_ylim(bottom=0)
        ax.grid(color=GRID, linewidth=0.6)
        ax.tick_params(colors=MUTED, labelsize=7)
        ax.set_xlabel("minutes", color=MUTED, fontsize=7, labelpad=1)
        for s in ax.spines.values():
            s.set_visible(False)
        if n:
            ax.legend(loc="upper left", fontsize=6.5, frameon=False, labelcolor=TEXT,
                      ncol=1 if n <= 4 else 2)
    fig.savefig(a.out, facecolor=BG)
    print(f"wrote {a.out}; panels without data: {empty or 'none'}")


if __name__ == "__main__":
    main()
