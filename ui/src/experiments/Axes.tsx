// Axes of one small chart: the two lines, min/max labels and the axis names.
import type { ReactElement } from "react";
import { BOX, type Bounds, formatNumber } from "./charts";

export function Axes({ bounds, xLabel, yLabel }: { bounds: Bounds; xLabel: string; yLabel: string }): ReactElement {
  const { width: w, height: h, pad } = BOX;
  return (
    <g className="mlp-exp__axes">
      <line x1={pad} y1={h - pad} x2={w - 8} y2={h - pad} stroke="#999" />
      <line x1={pad} y1={8} x2={pad} y2={h - pad} stroke="#999" />
      <text x={pad} y={h - pad + 12}>{formatNumber(bounds.x0)}</text>
      <text x={w - 8} y={h - pad + 12} textAnchor="end">{formatNumber(bounds.x1)}</text>
      <text x={pad - 3} y={h - pad} textAnchor="end">{formatNumber(bounds.y0)}</text>
      <text x={pad - 3} y={14} textAnchor="end">{formatNumber(bounds.y1)}</text>
      <text x={(pad + w) / 2} y={h - 6} textAnchor="middle">{xLabel}</text>
      <text x={10} y={(h - pad) / 2} transform={`rotate(-90 10 ${(h - pad) / 2})`} textAnchor="middle">
        {yLabel}
      </text>
    </g>
  );
}
