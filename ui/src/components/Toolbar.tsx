// File, edit and view commands, the validation status and, after a save, the DAG's links.
import { type ReactElement, useState } from "react";
import type { ErrorMap } from "../logic/errors";
import type { OpenFile } from "../logic/editor";
import type { RunInfo, WorkflowList } from "../types";

export interface ToolbarProps {
  file: OpenFile | null;
  dirty: boolean;
  workflows: WorkflowList | null;
  canSave: boolean;
  writable: boolean;
  readOnly: boolean;
  validating: boolean;
  errors: ErrorMap;
  canUndo: boolean;
  canRedo: boolean;
  runInfo: RunInfo | null;
  linkTarget: string;
  previewOpen: boolean;
  onNew(): void;
  onOpen(path: string): void;
  onSave(): void;
  onSaveAs(): void;
  onSaveDraft(): void;
  onDownload(): void;
  onUndo(): void;
  onRedo(): void;
  onLayout(): void;
  onFit(): void;
  onPreview(): void;
  onShowError(step: string | null): void;
}

export function Toolbar(p: ToolbarProps): ReactElement {
  const [showErrors, setShowErrors] = useState(false);
  const problems = p.errors.count;
  const allErrors = [
    ...Object.entries(p.errors.steps).flatMap(([step, e]) => e.messages.map((m) => ({ step, m }))),
    ...p.errors.document.map((e) => ({ step: null, m: e.field ? `${e.field}: ${e.message}` : e.message })),
  ];
  return (
    <div className="mlp-toolbar" data-testid="toolbar">
      <div className="mlp-toolbar__group">
        <button type="button" className="mlp-btn" onClick={p.onNew} disabled={p.readOnly} data-testid="new">
          New
        </button>
        <select
          className="mlp-input mlp-input--open"
          value=""
          aria-label="Open a workflow"
          onChange={(e) => e.target.value && p.onOpen(e.target.value)}
          data-testid="open"
        >
          <option value="">Open…</option>
          {p.workflows?.workflows.map((w) => (
            <option key={w.path} value={w.path}>
              {w.path}
              {w.draft ? " (draft)" : ""}
            </option>
          ))}
        </select>
        {p.writable && !p.readOnly ? (
          <>
            <button type="button" className="mlp-btn mlp-btn--primary" onClick={p.onSave} disabled={!p.canSave} title={problems ? "Fix the problems first, or save as a draft" : "Save"} data-testid="save">
              Save
            </button>
            <button type="button" className="mlp-btn" onClick={p.onSaveAs} data-testid="save-as">
              Save as…
            </button>
            <button type="button" className="mlp-btn" onClick={p.onSaveDraft} title="Save as <name>.draft.yaml: the loader skips drafts" data-testid="save-draft">
              Save draft
            </button>
          </>
        ) : null}
        <button type="button" className="mlp-btn" onClick={p.onDownload} title="Download the YAML" data-testid="download">
          Download
        </button>
      </div>
      <div className="mlp-toolbar__group">
        <button type="button" className="mlp-btn" onClick={p.onUndo} disabled={!p.canUndo} title="Undo (Ctrl+Z)" data-testid="undo">
          ↶
        </button>
        <button type="button" className="mlp-btn" onClick={p.onRedo} disabled={!p.canRedo} title="Redo (Ctrl+Shift+Z)" data-testid="redo">
          ↷
        </button>
        <button type="button" className="mlp-btn" onClick={p.onLayout} disabled={p.readOnly} title="Arrange the steps along their edges" data-testid="auto-layout">
          Auto-layout
        </button>
        <button type="button" className="mlp-btn" onClick={p.onFit} title="Zoom to fit" data-testid="fit">
          Fit
        </button>
        <button type="button" className={`mlp-btn${p.previewOpen ? " mlp-btn--on" : ""}`} onClick={p.onPreview} data-testid="preview-toggle">
          Preview
        </button>
      </div>
      <div className="mlp-toolbar__group mlp-toolbar__status">
        <span className="mlp-file" data-testid="file-name">
          {p.file ? p.file.path : "new workflow"}
          {p.dirty ? " •" : ""}
          {p.file && !p.file.writable ? " (read-only)" : ""}
        </span>
        <button
          type="button"
          className={`mlp-status ${p.validating ? "mlp-status--pending" : problems ? "mlp-status--bad" : "mlp-status--ok"}`}
          onClick={() => setShowErrors((s) => !s)}
          data-testid="validation-status"
        >
          {p.validating ? "checking…" : problems ? `${problems} problem${problems === 1 ? "" : "s"}` : "valid"}
        </button>
        {p.runInfo ? (
          <span className="mlp-links" data-testid="run-links">
            <a href={p.runInfo.trigger_url} target={p.linkTarget} data-testid="trigger-link">
              ▶ Trigger
            </a>
            <a href={p.runInfo.grid_url} target={p.linkTarget} data-testid="grid-link">
              Grid
            </a>
            {!p.runInfo.dag_exists ? <span className="mlp-help">(Airflow parses the new DAG shortly)</span> : null}
          </span>
        ) : null}
        {showErrors && allErrors.length > 0 ? (
          <ul className="mlp-errorlist" data-testid="error-list">
            {allErrors.map((e, i) => (
              <li key={i}>
                <button type="button" className="mlp-link" onClick={() => p.onShowError(e.step)}>
                  {e.step ? <strong>{e.step}: </strong> : null}
                  {e.m}
                </button>
              </li>
            ))}
          </ul>
        ) : null}
      </div>
    </div>
  );
}
