// Pure chart logic of the Experiments view: number formatting (as the CLI's table), scales,
// scatter points and series paths in an SVG box.
import type { Cell, ExperimentRow, Point } from "./types";

export interface Box {
  width: number;
  height: number;
  pad: number;
}

export const BOX: Box = { width: 320, height: 200, pad: 46 };
export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
/** The series charts draw the most recent runs only (as the HTML report). */
export const MAX_LINES = 50;

export const colorOf = (index: number): string => PALETTE[index % PALETTE.length] ?? "#000";

export function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** A number as Python's `format(v, ".4g")` writes it (integers as they are). */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return String(value);
  const [mantissa = "0", e = "0"] = value.toExponential(3).split("e");
  const exp = Number(e);
  if (exp < -4 || exp >= 4) {
    const m = mantissa.replace(/\.?0+$/, "");
    return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  return value.toFixed(Math.max(0, 3 - exp)).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

/** A cell as text: numbers with 4 significant digits (like Python's `:.4g`), null empty, objects as JSON. */
export function formatCell(value: Cell | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** `value` in [lo, hi] mapped onto [a, b]; the middle when lo === hi. */
export function scale(value: number, lo: number, hi: number, a: number, b: number): number {
  return hi === lo ? (a + b) / 2 : a + ((value - lo) * (b - a)) / (hi - lo);
}

export interface Bounds {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export function boundsOf(points: Point[]): Bounds | null {
  if (points.length === 0) return null;
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  return { x0, x1, y0, y1 };
}

/** Keys of a metrics line that count steps (the series' x axis), not metrics to plot. */
export const STEP_KEYS = ["step", "epoch", "iteration"];

/** The parameters with at least two different numbers across the runs: the scatter plots' x axes. */
export function numericParameters(parameters: string[], rows: ExperimentRow[]): string[] {
  return parameters.filter((p) => new Set(rows.map((r) => r.parameters[p]).filter(isNumber)).size > 1);
}

/** The final metrics the scatter plots show (not the step counters). */
export function scatterMetrics(metrics: string[]): string[] {
  return metrics.filter((m) => !STEP_KEYS.includes(m));
}

export interface Dot {
  row: number;
  x: number;
  y: number;
  cx: number;
  cy: number;
}

/** One dot per run that has both a numeric `parameter` and a numeric final `metric`. */
export function scatterDots(rows: ExperimentRow[], parameter: string, metric: string, box: Box = BOX): { dots: Dot[]; bounds: Bounds | null } {
  const raw: { row: number; x: number; y: number }[] = [];
  rows.forEach((r, row) => {
    const x = r.parameters[parameter];
    const y = r.final[metric];
    if (isNumber(x) && isNumber(y)) raw.push({ row, x, y });
  });
  const bounds = boundsOf(raw.map((d) => [d.x, d.y]));
  if (!bounds) return { dots: [], bounds };
  const dots = raw.map((d) => ({
    ...d,
    cx: scale(d.x, bounds.x0, bounds.x1, box.pad + 6, box.width - 14),
    cy: scale(d.y, bounds.y0, bounds.y1, box.height - box.pad - 6, 14),
  }));
  return { dots, bounds };
}

export interface Line {
  row: number;
  points: string;
  last: number;
}

/** The series of `metric`, one polyline per run (the last MAX_LINES runs that have it). */
export function seriesLines(rows: ExperimentRow[], metric: string, box: Box = BOX): { lines: Line[]; bounds: Bounds | null } {
  const having = rows.map((r, row) => ({ row, pts: r.series[metric] ?? [] })).filter((l) => l.pts.length > 0).slice(-MAX_LINES);
  const bounds = boundsOf(having.flatMap((l) => l.pts));
  if (!bounds) return { lines: [], bounds };
  const lines = having.map(({ row, pts }) => ({
    row,
    last: pts[pts.length - 1]?.[1] ?? NaN,
    points: pts
      .map(([x, y]) => `${scale(x, bounds.x0, bounds.x1, box.pad + 4, box.width - 12).toFixed(1)},${scale(y, bounds.y0, bounds.y1, box.height - box.pad - 4, 12).toFixed(1)}`)
      .join(" "),
  }));
  return { lines, bounds };
}

/** Every metric that has a series in some run, sorted. */
export function seriesNames(rows: ExperimentRow[]): string[] {
  return [...new Set(rows.flatMap((r) => Object.keys(r.series)))].sort();
}
