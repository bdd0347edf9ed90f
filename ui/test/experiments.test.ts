import { describe, expect, it } from "vitest";
import { ApiError } from "../src/api";
import { experimentsUrl, fetchExperiments } from "../src/experiments/api";
import { BOX, MAX_LINES, formatCell, formatNumber, numericParameters, scale, scatterDots, scatterMetrics, seriesLines, seriesNames } from "../src/experiments/charts";
import { errorMessage } from "../src/experiments/ExperimentsApp";
import type { ExperimentRow } from "../src/experiments/types";

const row = (run: string, parameters: ExperimentRow["parameters"], final: ExperimentRow["final"], series: ExperimentRow["series"] = {}): ExperimentRow => ({
  run_id: run,
  try_number: 1,
  map_index: -1,
  cells: [],
  parameters,
  final,
  series,
  output_url: `/mlplatform/outputs/d/${run}/t/1`,
});

describe("Experiments charts", () => {
  it("formats numbers like the CLI's table (Python's .4g)", () => {
    expect(formatNumber(0.123456)).toBe("0.1235");
    expect(formatNumber(10)).toBe("10");
    expect(formatNumber(2.5)).toBe("2.5");
    expect(formatNumber(0.00001234)).toBe("1.234e-05");
    expect(formatNumber(123456.5)).toBe("1.235e+05");
    expect(formatNumber(1 / 3)).toBe("0.3333");
    expect(formatCell(null)).toBe("");
    expect(formatCell(true)).toBe("true");
    expect(formatCell({ a: [1] })).toBe('{"a":[1]}');
  });

  it("scales, and centres a constant", () => {
    expect(scale(5, 0, 10, 0, 100)).toBe(50);
    expect(scale(0, 0, 10, 100, 0)).toBe(100);
    expect(scale(3, 3, 3, 0, 100)).toBe(50);
  });

  it("puts one dot per run with a numeric parameter and metric, higher metric higher up", () => {
    const rows = [row("a", { C: 0.1, p: "l2" }, { acc: 0.8 }), row("b", { C: 10, p: "l1" }, { acc: 0.9 }), row("c", { C: "x" }, { acc: 0.7 })];
    expect(numericParameters(["C", "p"], rows)).toEqual(["C"]);
    expect(numericParameters(["seed"], [row("a", { seed: 7 }, {}), row("b", { seed: 7 }, {})])).toEqual([]); // never changed
    expect(scatterMetrics(["acc", "epoch", "step", "loss"])).toEqual(["acc", "loss"]);
    const { dots, bounds } = scatterDots(rows, "C", "acc");
    expect(bounds).toEqual({ x0: 0.1, x1: 10, y0: 0.8, y1: 0.9 });
    expect(dots.map((d) => d.row)).toEqual([0, 1]);
    expect(dots[0]!.cx).toBe(BOX.pad + 6);
    expect(dots[1]!.cx).toBe(BOX.width - 14);
    expect(dots[1]!.cy).toBeLessThan(dots[0]!.cy); // SVG y grows downwards
    expect(scatterDots(rows, "p", "acc").dots).toEqual([]);
  });

  it("draws a line per run that has the series, the last MAX_LINES only", () => {
    const rows = Array.from({ length: MAX_LINES + 5 }, (_, i) => row(`r${i}`, {}, {}, i === 0 ? {} : { loss: [[0, 1], [1, 0.5 - i / 1000]] }));
    const { lines, bounds } = seriesLines(rows, "loss");
    expect(lines).toHaveLength(MAX_LINES);
    expect(lines[0]!.row).toBe(5);
    expect(lines.at(-1)!.last).toBeCloseTo(0.5 - (MAX_LINES + 4) / 1000);
    expect(bounds!.y1).toBe(1);
    expect(lines[0]!.points.split(" ")).toHaveLength(2);
    expect(seriesNames([row("a", {}, {}, { b: [[0, 1]], a: [[0, 1]] }), row("b", {}, {}, { a: [[0, 2]] })])).toEqual(["a", "b"]);
    expect(seriesLines([], "loss").lines).toEqual([]);
  });
});

describe("Experiments API client", () => {
  it("asks for the task's runs and turns errors into ApiError", async () => {
    expect(experimentsUrl("http://h/af/mlplatform/api/", "my dag", "g.train", { last: 5, diff: true })).toBe(
      "http://h/af/mlplatform/api/experiments/my%20dag/g.train?last=5&diff=true",
    );
    const urls: string[] = [];
    const fake = (async (url: string) => {
      urls.push(url);
      return url.includes("secret")
        ? new Response(JSON.stringify({ detail: "Forbidden: 'viewer' has no permission to read DAG 'secret'" }), { status: 403 })
        : new Response(JSON.stringify({ dag_id: "d", rows: [] }), { status: 200 });
    }) as unknown as typeof fetch;
    expect((await fetchExperiments("http://h/mlplatform/api/", "d", "t", { last: 20, diff: false }, fake)).dag_id).toBe("d");
    const failure = await fetchExperiments("http://h/mlplatform/api/", "secret", "t", { last: 20, diff: false }, fake).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(403);
    expect(errorMessage(failure)).toBe("Not allowed: Forbidden: 'viewer' has no permission to read DAG 'secret'");
    expect(errorMessage(new ApiError(401, "Not authenticated"))).toMatch(/Sign in/);
    const down = (async () => {
      throw new TypeError("fetch failed");
    }) as unknown as typeof fetch;
    expect(errorMessage(await fetchExperiments("http://h/mlplatform/api/", "d", "t", { last: 1, diff: false }, down).catch((e: unknown) => e))).toBe(
      "the server cannot be reached",
    );
  });
});
