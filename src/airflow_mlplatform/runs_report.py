"""A self-contained HTML report of a :class:`~airflow_mlplatform.runs_compare.Comparison`:
the runs table, a parameter-vs-metric scatter plot per numeric parameter and final metric, and
each metric's series as one line per run. Inline CSS and SVG only: no script, no external
resource, so it opens from a file, a mail or an artifact store. Stdlib only.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from airflow_mlplatform.runs_compare import STEP_KEYS, Comparison, RunRow, format_cell, is_number

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")  # fmt: skip
W, H, PAD = 320, 200, 46
#: at most this many scatter plots (numeric parameters x metrics) and series charts
MAX_CHARTS = 36
#: the series charts draw the most recent runs only (a thousand lines in one chart say nothing)
MAX_LINES = 50

_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;text-align:center}
svg text{font-size:10px;fill:#555}.failed td{color:#b00}.wrap{max-height:60vh;overflow:auto}
"""


def color(index: int) -> str:
    """The colour of the ``index``-th run.

    :param index: the run's position in the table.
    """
    return PALETTE[index % len(PALETTE)]


def scale(value: float, lo: float, hi: float, a: float, b: float) -> float:
    """``value`` in [lo, hi] mapped onto [a, b] (the middle when lo == hi).

    :param value: the data value.
    :param lo: the data's lowest value.
    :param hi: the data's highest value.
    :param a: where lo lands.
    :param b: where hi lands.
    """
    if hi == lo:
        return (a + b) / 2
    return a + (value - lo) * (b - a) / (hi - lo)


def _axes(xs: Sequence[float], ys: Sequence[float], xlabel: str, ylabel: str) -> list[str]:
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    e = html.escape
    return [
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="8" x2="{PAD}" y2="{H - PAD}" stroke="#999"/>',
        f'<text x="{PAD}" y="{H - PAD + 12}">{e(format_cell(x0))}</text>',
        f'<text x="{W - 8}" y="{H - PAD + 12}" text-anchor="end">{e(format_cell(x1))}</text>',
        f'<text x="{PAD - 3}" y="{H - PAD}" text-anchor="end">{e(format_cell(y0))}</text>',
        f'<text x="{PAD - 3}" y="14" text-anchor="end">{e(format_cell(y1))}</text>',
        f'<text x="{(PAD + W) / 2}" y="{H - 6}" text-anchor="middle">{e(xlabel)}</text>',
        f'<text x="10" y="{(H - PAD) / 2}" transform="rotate(-90 10 {(H - PAD) / 2})" '
        f'text-anchor="middle">{e(ylabel)}</text>',
    ]


def _svg(parts: list[str], label: str) -> str:
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'role="img" aria-label="{html.escape(label)}">{body}</svg>'
    )


def scatter_svg(rows: Sequence[RunRow], parameter: str, metric: str) -> str:
    """One scatter plot: ``parameter`` (x) against the final ``metric`` (y), a dot per run.

    :param rows: the runs.
    :param parameter: a numeric parameter.
    :param metric: a final metric.
    """
    points = [
        (i, float(r.parameters[parameter]), float(r.metrics[metric]))
        for i, r in enumerate(rows)
        if is_number(r.parameters.get(parameter)) and is_number(r.metrics.get(metric))
    ]
    if not points:
        return ""
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    parts = _axes(xs, ys, parameter, metric)
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    for i, x, y in points:
        cx = scale(x, x0, x1, PAD + 6, W - 14)
        cy = scale(y, y0, y1, H - PAD - 6, 14)
        tip = html.escape(f"{rows[i].run_id}: {parameter}={format_cell(x)}, {metric}={format_cell(y)}")
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{color(i)}"><title>{tip}</title></circle>'
        )
    return _svg(parts, f"{metric} against {parameter}")


def series_svg(rows: Sequence[RunRow], metric: str) -> str:
    """One line chart: the series of ``metric``, a line per run (the last :data:`MAX_LINES` runs).

    :param rows: the runs.
    :param metric: a metric with a series.
    """
    lines = [(i, r.series[metric]) for i, r in enumerate(rows) if r.series.get(metric)][-MAX_LINES:]
    if not lines:
        return ""
    xs = [p[0] for _, pts in lines for p in pts]
    ys = [p[1] for _, pts in lines for p in pts]
    parts = _axes(xs, ys, "step", metric)
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    for i, pts in lines:
        coords = " ".join(
            f"{scale(x, x0, x1, PAD + 4, W - 12):.1f},{scale(y, y0, y1, H - PAD - 4, 12):.1f}" for x, y in pts
        )
        tip = html.escape(f"{rows[i].run_id}: last {metric}={format_cell(pts[-1][1])}")
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color(i)}" stroke-width="1.5">'
            f"<title>{tip}</title></polyline>"
        )
    return _svg(parts, f"{metric} series")


def numeric_parameters(comparison: Comparison) -> list[str]:
    """The parameters with at least two different numbers across the runs (the scatter plots'
    x axes: a parameter that never changed explains nothing).

    :param comparison: the runs.
    """
    out = []
    for p in comparison.parameters:
        if len({r.parameters[p] for r in comparison.rows if is_number(r.parameters.get(p))}) > 1:
            out.append(p)
    return out


def scatter_metrics(comparison: Comparison) -> list[str]:
    """The final metrics the scatter plots show (not the step counters: ``step``, ``epoch``...).

    :param comparison: the runs.
    """
    return [m for m in comparison.metrics if m not in STEP_KEYS]


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>" if svg else ""


def report_html(comparison: Comparison, *, diff: bool = False, title: str | None = None) -> str:
    """The whole report, one HTML document.

    :param comparison: the runs.
    :param diff: the table keeps only the columns that differ.
    :param title: the page title (default: ``dag / task``).
    """
    e = html.escape
    rows = comparison.rows
    title = title or f"{comparison.dag_id} / {comparison.task_id}: {len(rows)} run(s)"
    columns = comparison.columns(diff=diff)
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = []
    for i, r in enumerate(rows):
        cells = []
        for c in columns:
            value = r.cell(c)
            cls = ' class="num"' if is_number(value) else ""
            style = f' style="border-left:4px solid {color(i)}"' if c == "run" else ""
            cells.append(f"<td{cls}{style}>{e(format_cell(value))}</td>")
        failed = ' class="failed"' if r.status not in ("success", "") else ""
        body.append(f"<tr{failed}>{''.join(cells)}</tr>")
    scatters = [
        _figure(scatter_svg(rows, p, m), f"{m} vs {p}")
        for p in numeric_parameters(comparison)
        for m in scatter_metrics(comparison)
    ][:MAX_CHARTS]
    series_names = sorted({k for r in rows for k in r.series})[:MAX_CHARTS]
    lines = [_figure(series_svg(rows, m), m) for m in series_names]
    first = max(len(rows) - MAX_LINES, 0)
    legend = " ".join(
        f'<span style="color:{color(i)}">&#9632;</span> {e(rows[i].run_id)}' for i in range(first, len(rows))
    )
    if first:
        legend = f"The last {MAX_LINES} of {len(rows)} runs: {legend}"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1><h2>Runs</h2>"
        f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        f'<h2>Parameters against final metrics</h2><div class="charts">{"".join(scatters) or "<p>No numeric parameter that changed between runs, with a metric.</p>"}</div>'
        f'<h2>Metric series</h2><p>{legend}</p><div class="charts">{"".join(lines) or "<p>No metric series.</p>"}</div>'
        "</body></html>"
    )
