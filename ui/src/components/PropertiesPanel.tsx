// The selected step's properties, generated from its type's schema, plus its parameters table.
import { type ReactElement, useEffect, useState } from "react";
import { useDesigner } from "../context";
import { renameStep, renameStepParameter, setStepField, setStepParameter, STEP_ID_RE } from "../logic/document";
import { fieldErrors } from "../logic/errors";
import type { Step, WorkflowDocument } from "../types";
import { FieldInput } from "./FieldInput";
import { ParametersTable } from "./ParametersTable";

export interface PropertiesPanelProps {
  doc: WorkflowDocument;
  step: Step;
  onChange(doc: WorkflowDocument, key?: string): void;
  onSelect(id: string | null): void;
  onDelete(id: string): void;
}

export function PropertiesPanel({ doc, step, onChange, onSelect, onDelete }: PropertiesPanelProps): ReactElement {
  const { errors, profiles, hints, readOnly, fields, stepType } = useDesigner();
  const [id, setId] = useState(step.id);
  const [idProblem, setIdProblem] = useState<string | null>(null);
  useEffect(() => {
    setId(step.id);
    setIdProblem(null);
  }, [step.id]);

  const commitId = (): void => {
    if (id === step.id) return;
    if (!STEP_ID_RE.test(id)) setIdProblem("letters, digits, _ and - only");
    else if (doc.steps.some((s) => s.id === id)) setIdProblem(`there is a step "${id}" already`);
    else {
      setIdProblem(null);
      onChange(renameStep(doc, step.id, id));
      onSelect(id);
      return;
    }
    setId(step.id);
  };
  const type = stepType(step.type);
  const specs = fields(step.type);
  const common = specs.filter((f) => f.common);
  const own = specs.filter((f) => !f.common);
  const renderField = (f: (typeof specs)[number]): ReactElement => (
    <FieldInput
      key={`${step.id}.${f.name}`}
      field={f}
      value={step[f.name]}
      errors={fieldErrors(errors, step.id, f.name)}
      profiles={profiles}
      readOnly={readOnly}
      testId={`field-${f.name}`}
      onChange={(value) => onChange(setStepField(doc, step.id, f.name, value), `${step.id}.${f.name}`)}
    />
  );
  const loose = errors.steps[step.id]?.messages.filter((m) => !Object.values(errors.steps[step.id]?.fields ?? {}).flat().includes(m)) ?? [];
  return (
    <div className="mlp-props" data-testid="properties">
      <div className="mlp-props__header">
        <span className={`mlp-badge mlp-badge--${step.type}`}>{step.type}</span>
        <input
          className="mlp-input mlp-input--title"
          value={id}
          aria-label="Step id"
          disabled={readOnly}
          onChange={(e) => setId(e.target.value)}
          onBlur={commitId}
          onKeyDown={(e) => e.key === "Enter" && commitId()}
          data-testid="step-id"
        />
        <button type="button" className="mlp-btn mlp-btn--small" disabled={readOnly} onClick={() => onDelete(step.id)} title="Delete step (Del)" data-testid="delete-step">
          Delete
        </button>
      </div>
      {idProblem ? <div className="mlp-error">{idProblem}</div> : null}
      {!type ? <div className="mlp-error">This provider has no step type “{step.type}”.</div> : <p className="mlp-help">{type.description}</p>}
      {loose.map((m, i) => (
        <div key={i} className="mlp-error">
          {m}
        </div>
      ))}
      {own.map(renderField)}
      <ParametersTable
        step={step}
        errors={errors}
        hint={hints[step.id]}
        readOnly={readOnly}
        onSet={(name, value) => onChange(setStepParameter(doc, step.id, name, value), `${step.id}.parameters.${name}`)}
        onRename={(from, to) => onChange(renameStepParameter(doc, step.id, from, to))}
      />
      <details className="mlp-section">
        <summary className="mlp-section__title">Common settings</summary>
        {common.map(renderField)}
      </details>
    </div>
  );
}
