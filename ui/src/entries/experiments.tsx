// The Experiments react_apps bundle: Airflow's UI imports this file on a task's page and renders
// the component at globalThis["Experiments"] (or globalThis.AirflowPlugin) with the host's React.
import type { ReactElement } from "react";
import { ExperimentsApp, type ExperimentsAppProps } from "../experiments/ExperimentsApp";
import css from "../experiments/styles.css?inline";

const STYLE_ID = "mlplatform-experiments-style";

function Experiments(props: ExperimentsAppProps): ReactElement {
  if (!document.getElementById(STYLE_ID)) {
    const style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = css;
    document.head.appendChild(style);
  }
  return <ExperimentsApp {...props} />;
}

const host = globalThis as unknown as Record<string, unknown>;
host.Experiments = host.AirflowPlugin = Experiments;

export default Experiments;
