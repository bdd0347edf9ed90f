// A parameter (x) against a final metric (y): one dot per run, in the run's colour.
import type { ReactElement } from "react";
import { Axes } from "./Axes";
import { BOX, colorOf, formatNumber, scatterDots } from "./charts";
import type { ExperimentRow } from "./types";

export function ScatterChart({ rows, parameter, metric }: { rows: ExperimentRow[]; parameter: string; metric: string }): ReactElement | null {
  const { dots, bounds } = scatterDots(rows, parameter, metric);
  if (!bounds) return null;
  const label = `${metric} against ${parameter}`;
  return (
    <figure className="mlp-exp__figure">
      <svg width={BOX.width} height={BOX.height} viewBox={`0 0 ${BOX.width} ${BOX.height}`} role="img" aria-label={label} data-testid={`scatter-${parameter}-${metric}`}>
        <Axes bounds={bounds} xLabel={parameter} yLabel={metric} />
        {dots.map((d) => (
          <circle key={d.row} cx={d.cx.toFixed(1)} cy={d.cy.toFixed(1)} r={4} fill={colorOf(d.row)}>
            <title>{`${rows[d.row]?.run_id}: ${parameter}=${formatNumber(d.x)}, ${metric}=${formatNumber(d.y)}`}</title>
          </circle>
        ))}
      </svg>
      <figcaption>{`${metric} vs ${parameter}`}</figcaption>
    </figure>
  );
}
