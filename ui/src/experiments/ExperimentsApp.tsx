// The Experiments view: a task's runs side by side (table, parameter-vs-metric scatter plots,
// metric series), from the stored execution records. Rendered by Airflow's UI on a task's page.
import { type ReactElement, useEffect, useState } from "react";
import { ApiError, apiBase } from "../api";
import { fetchExperiments, type ExperimentsQuery } from "./api";
import { numericParameters, scatterMetrics, seriesNames } from "./charts";
import { RunsTable } from "./RunsTable";
import { ScatterChart } from "./ScatterChart";
import { SeriesChart } from "./SeriesChart";
import type { Experiments } from "./types";

export interface ExperimentsAppProps {
  dagId?: string;
  taskId?: string;
}

type State = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready"; data: Experiments };

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return "Sign in to Airflow to see this task's runs.";
    if (error.status === 403) return `Not allowed: ${error.message}`;
    return error.message;
  }
  return String(error);
}

export function ExperimentsApp({ dagId, taskId }: ExperimentsAppProps): ReactElement {
  const [query, setQuery] = useState<ExperimentsQuery>({ last: 20, diff: false });
  const [state, setState] = useState<State>({ kind: "loading" });

  useEffect(() => {
    if (!dagId || !taskId) return;
    let live = true;
    setState({ kind: "loading" });
    fetchExperiments(apiBase(window.location, document.baseURI), dagId, taskId, query).then(
      (data) => live && setState({ kind: "ready", data }),
      (error: unknown) => live && setState({ kind: "error", message: errorMessage(error) }),
    );
    return () => {
      live = false;
    };
  }, [dagId, taskId, query]);

  if (!dagId || !taskId) return <div className="mlp-experiments">Open a task to compare its runs.</div>;
  return (
    <div className="mlp-experiments" data-testid="experiments">
      <div className="mlp-exp__controls">
        <label>
          Last{" "}
          <select data-testid="experiments-last" value={query.last} onChange={(e) => setQuery({ ...query, last: Number(e.target.value) })}>
            {[5, 20, 100, 1000].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>{" "}
          runs
        </label>
        <label>
          <input type="checkbox" data-testid="experiments-diff" checked={query.diff} onChange={(e) => setQuery({ ...query, diff: e.target.checked })} /> only
          what differs
        </label>
      </div>
      {state.kind === "loading" && <p data-testid="experiments-status">Loading…</p>}
      {state.kind === "error" && (
        <p className="mlp-exp__error" data-testid="experiments-status">
          {state.message}
        </p>
      )}
      {state.kind === "ready" && <Comparison data={state.data} />}
    </div>
  );
}

function Comparison({ data }: { data: Experiments }): ReactElement {
  if (data.rows.length === 0) {
    return <p data-testid="experiments-status">No execution records of this task yet: run it, then come back.</p>;
  }
  const params = numericParameters(data.parameters, data.rows);
  return (
    <>
      <h3>Runs</h3>
      <RunsTable data={data} />
      <h3>Parameters against final metrics</h3>
      <div className="mlp-exp__charts">
        {params.flatMap((p) => scatterMetrics(data.metrics).map((m) => <ScatterChart key={`${p}/${m}`} rows={data.rows} parameter={p} metric={m} />))}
      </div>
      <h3>Metric series</h3>
      <div className="mlp-exp__charts">
        {seriesNames(data.rows).map((m) => (
          <SeriesChart key={m} rows={data.rows} metric={m} />
        ))}
      </div>
    </>
  );
}
