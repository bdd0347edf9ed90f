// The workflow's own fields (DAG id, description, schedule, ...), generated from the document schema.
import { type ReactElement, useMemo } from "react";
import { useDesigner } from "../context";
import { fieldsForStepType } from "../logic/schemaForm";
import type { Json, WorkflowDocument } from "../types";
import { FieldInput } from "./FieldInput";

/** Edited elsewhere: the steps on the canvas, params in their tab. */
const OWN_EDITORS = new Set(["version", "steps", "params", "layout"]);

export function DocumentPanel({ doc, onChange }: { doc: WorkflowDocument; onChange(doc: WorkflowDocument, key?: string): void }): ReactElement {
  const { palette, errors, profiles, readOnly } = useDesigner();
  const fields = useMemo(() => {
    const pseudo = { type: "document", description: "", outputs_ports: false, file_kinds: [], schema: palette.document_schema };
    return fieldsForStepType(pseudo, new Set(), palette.document_schema, OWN_EDITORS);
  }, [palette]);
  const set = (name: string, value: Json | undefined): void => {
    const next: WorkflowDocument = { ...doc };
    if (value === undefined) delete next[name];
    else next[name] = value;
    onChange(next, `doc.${name}`);
  };
  return (
    <div className="mlp-props" data-testid="document-panel">
      <div className="mlp-props__header">
        <span className="mlp-badge mlp-badge--params">workflow</span>
        <span className="mlp-node__id">{doc.id}</span>
      </div>
      <p className="mlp-help">Select a step to edit it. These are the DAG&apos;s own settings.</p>
      {errors.document
        .filter((e) => !e.field || !e.field.startsWith("params."))
        .map((e, i) => (
          <div key={i} className="mlp-error" data-testid="document-error">
            {e.field ? `${e.field}: ` : ""}
            {e.message}
          </div>
        ))}
      {fields.map((f) => (
        <FieldInput
          key={f.name}
          field={f}
          value={doc[f.name] as Json | undefined}
          errors={errors.document.filter((e) => e.field === f.name || (e.field ?? "").startsWith(`${f.name}.`)).map((e) => e.message)}
          profiles={profiles}
          readOnly={readOnly}
          testId={`doc-${f.name}`}
          onChange={(value) => set(f.name, value)}
        />
      ))}
    </div>
  );
}
