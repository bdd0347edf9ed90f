// The react_apps bundle: Airflow's UI imports this file and renders the component it finds at
// globalThis["Workflow designer"] (or globalThis.AirflowPlugin) with the host's React.
import type { ReactElement } from "react";
import { DesignerApp, type DesignerAppProps } from "../DesignerApp";
import { injectStyles } from "./mount";

function WorkflowDesigner(props: DesignerAppProps): ReactElement {
  injectStyles();
  return <DesignerApp {...props} />;
}

const host = globalThis as unknown as Record<string, unknown>;
host["Workflow designer"] = host.AirflowPlugin = WorkflowDesigner;

export default WorkflowDesigner;
