"""``mlplatform usage``: core-hours, GPU-hours, memory GiB-hours, runs, failures and cost per tenant.

Reads the execution records under ``[mlplatform] output_base`` through
:func:`airflow_mlplatform.record_store.iter_summaries` (the store's date index: only the days
asked for are read; the first run on an older store indexes it once), sums each
try's ``usage`` section (docs/execution-record.md) by the keys of ``--by``, and prices it with a
rates file::

    currency: EUR
    resources: {cpu: 0.04, memory: 0.005, gpu: 2.50, A100: 3.20}   # per core-, GiB-, GPU-hour;
                                                                    # a GPU type (or resource) by name
    profiles:                                                       # a profile's own prices win
      gpu-small: {cpu: 0.05, gpu: 2.90}
    valohai:                                                        # per hour, by environment
      aws-eu-west-1-p3-2xlarge: 3.06                                # (slug or name)

Records of version 1 (no ``usage``) count as one core for the try's duration, without memory,
GPUs or tenant. The HTML report is one self-contained file: the table and a stacked bar chart of
core-hours per tenant per day (inline SVG, no scripts, nothing fetched).
"""

from __future__ import annotations

import argparse
import html
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import ConfigurationError

log = logging.getLogger(__name__)

#: What ``--by`` may group by.
KEYS = ("tenant", "profile", "dag", "kind", "day", "cost_centre")
COLUMNS = ("runs", "failures", "core_hours", "gpu_hours", "memory_gib_hours", "cost")
UNKNOWN = "(none)"


class RatesFileError(ConfigurationError):
    """The rates file of ``mlplatform usage --rates`` cannot be used."""


@dataclass(frozen=True)
class Rates:
    """Prices per core-hour, GiB-hour and GPU-hour (by GPU type), per profile, and per Valohai hour.

    :param currency: shown next to the cost.
    :param resources: ``cpu``, ``memory``, ``gpu`` and GPU types or resource names.
    :param profiles: a profile's own ``resources``-like prices (they win).
    :param valohai: price per hour of each Valohai environment (slug, id or name).
    """

    currency: str = ""
    resources: Mapping[str, float] = field(default_factory=dict)
    profiles: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    valohai: Mapping[str, float] = field(default_factory=dict)

    def price(self, profile: str | None, resource: str) -> float:
        own = self.profiles.get(profile or "", {})
        return float(own.get(resource, self.resources.get(resource, 0.0)))

    def gpu_price(self, profile: str | None, gpu_type: str | None) -> float:
        own = self.profiles.get(profile or "", {})
        for table in (own, self.resources):
            if gpu_type and gpu_type in table:
                return float(table[gpu_type])
            if "gpu" in table:
                return float(table["gpu"])
        return 0.0


def _prices(data: Any, where: str) -> dict[str, float]:
    if not isinstance(data, Mapping):
        raise RatesFileError(f"{where} must be a mapping of name: price, e.g. {{cpu: 0.04, gpu: 2.5}}")
    out = {}
    for k, v in data.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise RatesFileError(f"{where}.{k} is {v!r}: a price must be a number >= 0")
        out[str(k)] = float(v)
    return out


def load_rates(path: str | Path) -> Rates:
    """Read and check a rates file (see the module doc).

    :param path: the YAML file.
    :raises RatesFileError: it cannot be read, or a price is not a number >= 0.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RatesFileError(f"rates file {path}: cannot be read ({e})") from e
    if not isinstance(data, Mapping):
        raise RatesFileError(f"rates file {path}: write a mapping with resources, profiles, valohai")
    unknown = set(data) - {"currency", "resources", "profiles", "valohai"}
    if unknown:
        raise RatesFileError(
            f"rates file {path}: unknown keys {sorted(unknown)}; use currency, resources, profiles, valohai"
        )
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, Mapping):
        raise RatesFileError(f"rates file {path}: profiles must map profile names to prices")
    return Rates(
        currency=str(data.get("currency") or ""),
        resources=_prices(data.get("resources") or {}, f"rates file {path}: resources"),
        profiles={str(n): _prices(p, f"rates file {path}: profiles.{n}") for n, p in profiles.items()},
        valohai=_prices(data.get("valohai") or {}, f"rates file {path}: valohai"),
    )


#: The name (and version) of the per-day rollups cached in the store's date index.
ROLLUP_NAME = "usage-rollup-1"
#: What a try's usage is rolled up by (a day's rollup has one row per combination).
ROLLUP_KEYS = ("day", "tenant", "profile", "dag", "kind", "cost_centre", "valohai")


def try_part(record: Mapping[str, Any]) -> dict[str, Any]:
    """What one record's try used, before prices: a rollup row of one run.

    ``core_h``, ``memory_h`` (GiB-hours), ``gpu_h`` by GPU type, ``hours`` billed, ``valohai``
    (``environment|name`` of a Valohai execution, else ""). Version 1 records count one core.

    :param record: an execution record (version 1 or 2), or its index summary.
    """
    timings = record.get("timings") or {}
    row: dict[str, Any] = {
        "day": str(timings.get("started") or "")[:10],
        "dag": str((record.get("task") or {}).get("dag_id") or UNKNOWN),
        "runs": 1,
        "valohai": "",
    }
    section = record.get("usage")
    if not isinstance(section, Mapping):  # version 1
        hours = float(timings.get("duration_s") or 0.0) / 3600.0
        backend = (record.get("where") or {}).get("backend", "local")
        row.update(
            tenant=UNKNOWN,
            profile=str((record.get("environment") or {}).get("profile") or UNKNOWN),
            kind="worker" if backend == "local" else "unknown",
            cost_centre=UNKNOWN,
            failures=int(record.get("status") != "success"),
            core_h=hours,
            memory_h=0.0,
            gpu_h={},
            hours=hours,
        )
        return row
    hours = float(section.get("billable_s") or 0.0) / 3600.0
    totals = section.get("totals") or {}
    gpu_h: dict[str, float] = {}
    for r in section.get("replicas") or []:
        if isinstance(r, Mapping) and r.get("gpus"):
            kind = str(r.get("gpu_type") or "gpu")
            gpu_h[kind] = gpu_h.get(kind, 0.0) + float(r["gpus"]) * int(r.get("count", 1)) * hours
    valohai = section.get("valohai") or {}
    row.update(
        tenant=str(section.get("tenant") or UNKNOWN),
        profile=str(section.get("profile") or UNKNOWN),
        kind=str(section.get("kind") or UNKNOWN),
        cost_centre=str(section.get("cost_centre") or UNKNOWN),
        failures=int(bool(section.get("failed"))),
        core_h=float(totals.get("cpu") or 0.0) * hours,
        memory_h=float(totals.get("memory_gib") or 0.0) * hours,
        gpu_h=gpu_h,
        hours=hours,
        valohai=f"{valohai.get('environment') or ''}|{valohai.get('environment_name') or ''}"
        if valohai
        else "",
    )
    return row


def rollup(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The rows of :func:`try_part` of every record, summed per :data:`ROLLUP_KEYS` (JSON-ready).

    :param records: ``StoredRecord`` objects (their ``record``) or record dicts.
    """
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in records:
        part = try_part(getattr(item, "record", item))
        key = tuple(part[k] for k in ROLLUP_KEYS)
        row = rows.get(key)
        if row is None:
            rows[key] = part
            continue
        for k in ("runs", "failures", "core_h", "memory_h", "hours"):
            row[k] += part[k]
        for t, h in part["gpu_h"].items():
            row["gpu_h"][t] = row["gpu_h"].get(t, 0.0) + h
    return list(rows.values())


def price(row: Mapping[str, Any], rates: Rates | None) -> float:
    """The cost of a rollup row: a priced Valohai environment's hours, else core-, GiB- and GPU-hours.

    :param row: a :func:`rollup` row.
    :param rates: prices (None: 0).
    """
    if rates is None:
        return 0.0
    profile = row["profile"]
    if row["valohai"]:
        env_price = next(
            (rates.valohai[k] for k in row["valohai"].split("|") if k and k in rates.valohai), None
        )
        if env_price is not None:
            return env_price * row["hours"]
    cost = row["core_h"] * rates.price(profile, "cpu") + row["memory_h"] * rates.price(profile, "memory")
    return cost + sum(
        h * rates.gpu_price(profile, None if t == "gpu" else t) for t, h in row["gpu_h"].items()
    )


@dataclass(frozen=True)
class TryUsage:
    """One try (or a rollup row of several), priced: what the report sums."""

    day: str
    tenant: str
    profile: str
    dag: str
    kind: str
    cost_centre: str
    failed: int
    core_hours: float
    gpu_hours: float
    memory_gib_hours: float
    cost: float
    runs: int = 1

    def key(self, by: Sequence[str]) -> tuple[str, ...]:
        return tuple(getattr(self, k) for k in by)

    @classmethod
    def of_row(cls, row: Mapping[str, Any], rates: Rates | None) -> TryUsage:
        return cls(
            day=row["day"],
            tenant=row["tenant"],
            profile=row["profile"],
            dag=row["dag"],
            kind=row["kind"],
            cost_centre=row["cost_centre"],
            failed=int(row["failures"]),
            core_hours=row["core_h"],
            gpu_hours=sum(row["gpu_h"].values()),
            memory_gib_hours=row["memory_h"],
            cost=price(row, rates),
            runs=int(row["runs"]),
        )


def try_usage(record: Mapping[str, Any], rates: Rates | None = None) -> TryUsage:
    """What one record's try used (and cost, with ``rates``); version 1 records count one core.

    :param record: an execution record (version 1 or 2).
    :param rates: prices, or None (cost 0).
    """
    return TryUsage.of_row(try_part(record), rates)


@dataclass
class Totals:
    """Sums of one group."""

    runs: int = 0
    failures: int = 0
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    memory_gib_hours: float = 0.0
    cost: float = 0.0

    def add(self, t: TryUsage) -> None:
        self.runs += t.runs
        self.failures += t.failed
        self.core_hours += t.core_hours
        self.gpu_hours += t.gpu_hours
        self.memory_gib_hours += t.memory_gib_hours
        self.cost += t.cost


@dataclass
class Report:
    """The summary: totals per group, and core-hours per tenant per day (the chart)."""

    by: tuple[str, ...]
    groups: dict[tuple[str, ...], Totals] = field(default_factory=dict)
    daily: dict[tuple[str, str], float] = field(default_factory=dict)
    total: Totals = field(default_factory=Totals)
    currency: str = ""
    priced: bool = False

    def add(self, t: TryUsage) -> None:
        key = t.key(self.by)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Totals()
        group.add(t)
        self.total.add(t)
        self.daily[(t.day, t.tenant)] = self.daily.get((t.day, t.tenant), 0.0) + t.core_hours

    def rows(self) -> list[tuple[tuple[str, ...], Totals]]:
        return sorted(self.groups.items())


def summarize(
    records: Iterable[Mapping[str, Any]], *, by: Sequence[str], rates: Rates | None = None
) -> Report:
    """Sum the records' usage by the keys ``by`` (see :data:`KEYS`).

    :param records: execution records (dicts).
    :param by: group keys.
    :param rates: prices (None: no cost).
    """
    return summarize_rows(rollup(records), by=by, rates=rates)


def summarize_rows(
    rows: Iterable[Mapping[str, Any]], *, by: Sequence[str], rates: Rates | None = None
) -> Report:
    """Sum :func:`rollup` rows by the keys ``by``, priced with ``rates``.

    :param rows: rollup rows.
    :param by: group keys.
    :param rates: prices (None: no cost).
    """
    report = Report(by=tuple(by), currency=rates.currency if rates else "", priced=rates is not None)
    for row in rows:
        report.add(TryUsage.of_row(row, rates))
    return report


def _number(value: float) -> str:
    return f"{value:.2f}"


def _cells(totals: Totals, priced: bool) -> list[str]:
    cells = [str(totals.runs), str(totals.failures), _number(totals.core_hours), _number(totals.gpu_hours)]
    cells.append(_number(totals.memory_gib_hours))
    if priced:
        cells.append(_number(totals.cost))
    return cells


def headers(report: Report) -> list[str]:
    """The table's column names."""
    names = [*report.by, *COLUMNS[:5]]
    if report.priced:
        names.append(f"cost{f' ({report.currency})' if report.currency else ''}")
    return names


def table_rows(report: Report) -> list[list[str]]:
    """The table's rows, the total last."""
    rows = [[*key, *_cells(t, report.priced)] for key, t in report.rows()]
    rows.append(["total", *[""] * (len(report.by) - 1), *_cells(report.total, report.priced)])
    return rows


def render_text(report: Report) -> str:
    """An aligned plain-text table."""
    rows = [headers(report), *table_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def write_csv(report: Report, path: str | Path) -> None:
    """The table as CSV (the total row included).

    :param report: the summary.
    :param path: the CSV file to write.
    """
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(headers(report))
        writer.writerows(table_rows(report))


_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def chart_svg(report: Report, *, width: int = 900, height: int = 320) -> str:
    """A stacked bar chart (inline SVG) of core-hours per tenant per day.

    :param report: the summary.
    :param width: the chart's width in pixels.
    :param height: the chart's height in pixels.
    """
    days = sorted({d for d, _ in report.daily})
    tenants = sorted({t for _, t in report.daily})
    if not days:
        return "<p>No usage in this period.</p>"
    per_day = {d: sum(report.daily.get((d, t), 0.0) for t in tenants) for d in days}
    top = max(per_day.values()) or 1.0
    left, bottom, plot_h = 60, 40, height - 70
    bar_w = max(2.0, (width - left - 20) / len(days) * 0.8)
    step = (width - left - 20) / len(days)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20 * len(tenants)}" '
        f'role="img" aria-label="core-hours per tenant per day">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="5" y="20" font-size="12">{_number(top)} core-h</text>',
    ]
    for i, d in enumerate(days):
        x, y = left + i * step, float(height - bottom)
        for j, t in enumerate(tenants):
            value = report.daily.get((d, t), 0.0)
            if value <= 0:
                continue
            h = value / top * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_COLOURS[j % len(_COLOURS)]}"><title>{html.escape(d)} {html.escape(t)}: '
                f"{_number(value)} core-hours</title></rect>"
            )
        if len(days) <= 31 or i % max(1, len(days) // 15) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - bottom + 14}" font-size="10">{html.escape(d[5:])}</text>'
            )
    for j, t in enumerate(tenants):
        y = height + 20 * j
        parts.append(
            f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{_COLOURS[j % len(_COLOURS)]}"/>'
        )
        parts.append(f'<text x="{left + 18}" y="{y}" font-size="12">{html.escape(t)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(report: Report, *, title: str) -> str:
    """One self-contained HTML page: the chart and the table (no scripts, nothing fetched).

    :param report: the summary.
    :param title: the page's title (the period).
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers(report))
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(report)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}
td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Core-hours per tenant per day</h2>
{chart_svg(report)}
<h2>Usage by {html.escape(", ".join(report.by))}</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""


def parse_day(text: str, *, what: str) -> datetime:
    """``YYYY-MM-DD`` (or an ISO time) as an aware UTC datetime.

    :param text: the argument.
    :param what: ``--since`` or ``--until``, for the message.
    """
    try:
        when = datetime.fromisoformat(text)
    except ValueError as e:
        raise ConfigurationError(f"{what} {text!r}: write a date such as 2026-11-01 (or an ISO time)") from e
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_by(text: str) -> list[str]:
    """``tenant,profile`` as a checked list of :data:`KEYS`."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in KEYS]
    if bad or not keys:
        raise ConfigurationError(
            f"--by {text!r}: group by one or more of {', '.join(KEYS)} (comma-separated)"
        )
    return keys


def register(parser: argparse.ArgumentParser) -> None:
    """The ``mlplatform usage`` arguments (wired by :mod:`airflow_mlplatform.cli`).

    :param parser: the group's parser.
    """
    parser.add_argument("--since", help="first day (YYYY-MM-DD, UTC; tries that started then or later)")
    parser.add_argument("--until", help="day after the last one (YYYY-MM-DD, UTC; exclusive)")
    parser.add_argument("--by", default="tenant", help=f"group by, comma-separated: {', '.join(KEYS)}")
    parser.add_argument("--rates", help="YAML file of prices (per core-, GiB-, GPU-hour; Valohai per hour)")
    parser.add_argument("--csv", help="also write the table to this CSV file")
    parser.add_argument("--html", help="also write a self-contained HTML report (table and chart)")
    parser.add_argument("--base", help="where records are stored (default: [mlplatform] output_base)")
    parser.set_defaults(func=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    """Run ``mlplatform usage``; 0 on success, 1 on bad arguments (the message says which)."""
    try:
        since = parse_day(args.since, what="--since") if args.since else None
        until = parse_day(args.until, what="--until") if args.until else None
        by = parse_by(args.by)
        rates = load_rates(args.rates) if args.rates else None
    except ConfigurationError as e:
        print(str(e), file=sys.stderr)
        return 1
    report = build_report(base=args.base, since=since, until=until, by=by, rates=rates)
    print(render_text(report))
    if args.csv:
        write_csv(report, args.csv)
    if args.html:
        Path(args.html).write_text(render_html(report, title=period_title(since, until)), encoding="utf-8")
    return 0


def period_title(since: datetime | None, until: datetime | None) -> str:
    """``Usage 2026-11-01 to 2026-11-30`` (``until`` is exclusive)."""
    first = since.date().isoformat() if since else "the beginning"
    last = (until - timedelta(microseconds=1)).date().isoformat() if until else date.today().isoformat()
    return f"Usage {first} to {last}"


def build_report(
    *,
    base: str | None,
    since: datetime | None,
    until: datetime | None,
    by: Sequence[str],
    rates: Rates | None = None,
) -> Report:
    """Read the records of the period (record_store) and summarise them.

    :param base: where records are stored (None: ``[mlplatform] output_base``).
    :param since: first time (inclusive).
    :param until: last time (exclusive).
    :param by: group keys.
    :param rates: prices.
    """
    from airflow_mlplatform.record_store import fold_days

    days = fold_days(base=base, since=since, until=until, name=ROLLUP_NAME, fold=rollup, log=log)
    return summarize_rows((row for rows in days for row in rows), by=by, rates=rates)
