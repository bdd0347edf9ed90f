// The workflow designer: loads what the server offers, then edits one workflow document.
import { ReactFlowProvider } from "@xyflow/react";
import { type ReactElement, useEffect, useMemo, useState } from "react";
import { ApiError, type Api, apiBase, createApi } from "./api";
import { Editor } from "./Editor";
import type { Me, Palette, Profile, WorkflowList } from "./types";

export interface Boot {
  api: Api;
  me: Me;
  palette: Palette;
  profiles: Profile[];
  workflows: WorkflowList;
}

export interface DesignerAppProps {
  /** Passed by Airflow's plugin loader; the designer is not tied to one DAG. */
  dagId?: string;
  /** The iframe page sets this: links then open in the frame instead of the top page. */
  embedded?: boolean;
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return "You are not logged in to Airflow: log in and open the designer again.";
    if (error.status === 403) return "Your Airflow user may not read DAGs, so it cannot use the designer.";
    if (error.status === 404) return "The designer's API is not there: is the airflow-mlplatform plugin loaded by this api-server?";
    return `The designer's API failed: ${error.message}`;
  }
  return `The designer failed to start: ${(error as Error).message}`;
}

export function DesignerApp({ embedded = false }: DesignerAppProps): ReactElement {
  const api = useMemo(() => createApi(apiBase(window.location, document.baseURI)), []);
  const [boot, setBoot] = useState<Boot | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    Promise.all([api.me(), api.palette(), api.profiles(), api.workflows()]).then(
      ([me, palette, profiles, workflows]) => live && setBoot({ api, me, palette, profiles, workflows }),
      (e: unknown) => live && setError(describe(e)),
    );
    return () => {
      live = false;
    };
  }, [api]);
  return (
    <div className="mlp-designer" data-testid="designer">
      {error ? (
        <div className="mlp-fatal" data-testid="fatal">
          {error}
        </div>
      ) : !boot ? (
        <div className="mlp-fatal">Loading the workflow designer…</div>
      ) : (
        <ReactFlowProvider>
          <Editor boot={boot} embedded={embedded} />
        </ReactFlowProvider>
      )}
    </div>
  );
}

export default DesignerApp;
