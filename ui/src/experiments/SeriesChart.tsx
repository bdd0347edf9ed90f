// One metric's series: a line per run (the most recent ones), in the run's colour.
import type { ReactElement } from "react";
import { Axes } from "./Axes";
import { BOX, colorOf, formatNumber, seriesLines } from "./charts";
import type { ExperimentRow } from "./types";

export function SeriesChart({ rows, metric }: { rows: ExperimentRow[]; metric: string }): ReactElement | null {
  const { lines, bounds } = seriesLines(rows, metric);
  if (!bounds) return null;
  return (
    <figure className="mlp-exp__figure">
      <svg width={BOX.width} height={BOX.height} viewBox={`0 0 ${BOX.width} ${BOX.height}`} role="img" aria-label={`${metric} series`} data-testid={`series-${metric}`}>
        <Axes bounds={bounds} xLabel="step" yLabel={metric} />
        {lines.map((l) => (
          <polyline key={l.row} points={l.points} fill="none" stroke={colorOf(l.row)} strokeWidth={1.5}>
            <title>{`${rows[l.row]?.run_id}: last ${metric}=${formatNumber(l.last)}`}</title>
          </polyline>
        ))}
      </svg>
      <figcaption>{metric}</figcaption>
    </figure>
  );
}
