// The runs table: one row per run, its run id linking to the try's output viewer page.
import type { ReactElement } from "react";
import { colorOf, formatCell, isNumber } from "./charts";
import type { Experiments } from "./types";

export function RunsTable({ data }: { data: Experiments }): ReactElement {
  return (
    <div className="mlp-exp__wrap">
      <table className="mlp-exp__table" data-testid="experiments-table">
        <thead>
          <tr>
            {data.columns.map((c) => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.rows.map((row, i) => (
            <tr key={`${row.run_id}/${row.map_index}`} data-testid={`experiments-row-${i}`}>
              {row.cells.map((cell, j) => {
                const column = data.columns[j] ?? "";
                if (column === "run") {
                  return (
                    <td key={column} style={{ borderLeft: `4px solid ${colorOf(i)}` }}>
                      <a href={row.output_url} data-testid={`experiments-link-${i}`}>
                        {formatCell(cell)}
                      </a>
                    </td>
                  );
                }
                return (
                  <td key={column} className={isNumber(cell) ? "mlp-exp__num" : undefined}>
                    {formatCell(cell)}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
