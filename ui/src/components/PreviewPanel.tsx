// The generated Python DAG and the YAML, side by side, from the server's code generator.
import type { ReactElement } from "react";
import type { ServerCheck } from "../hooks/useServerCheck";
import type { Preview } from "../types";

export function PreviewPanel({ preview, onClose }: { preview: ServerCheck<Preview>; onClose(): void }): ReactElement {
  return (
    <div className="mlp-preview" data-testid="preview">
      <div className="mlp-preview__bar">
        <strong>Preview</strong>
        <span className="mlp-help">{preview.pending ? "updating…" : preview.error ? preview.error : "what Save writes, and the DAG file `mlplatform workflow generate` makes of it"}</span>
        <button type="button" className="mlp-btn mlp-btn--small" onClick={onClose}>
          Close
        </button>
      </div>
      <div className="mlp-preview__panes">
        <div className="mlp-preview__pane">
          <div className="mlp-section__title">YAML</div>
          <pre data-testid="preview-yaml">{preview.result?.yaml ?? ""}</pre>
        </div>
        <div className="mlp-preview__pane">
          <div className="mlp-section__title">Python</div>
          <pre data-testid="preview-python">{preview.result?.python ?? ""}</pre>
        </div>
      </div>
    </div>
  );
}
