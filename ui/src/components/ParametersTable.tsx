// A step's local parameters: name and value; a value wired from another step or a global
// parameter shows where it comes from. Values are read as JSON when they parse (0.25, true,
// [1, 2]), else as text.
import { type ReactElement, useEffect, useState } from "react";
import { fieldErrors } from "../logic/errors";
import { PARAM_NAME_RE } from "../logic/params";
import { parseExactRef } from "../logic/refs";
import type { ErrorMap } from "../logic/errors";
import type { Json, Step, StepHint } from "../types";

export function parseLooseValue(text: string): Json {
  if (text.trim() === "") return "";
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

const formatLoose = (value: Json): string => (typeof value === "string" ? value : JSON.stringify(value));

function ValueInput({ value, readOnly, testId, onChange }: { value: Json; readOnly: boolean; testId: string; onChange(v: Json): void }): ReactElement {
  const [text, setText] = useState(formatLoose(value));
  useEffect(() => setText((t) => (JSON.stringify(parseLooseValue(t)) === JSON.stringify(value) ? t : formatLoose(value))), [value]);
  return (
    <input
      className="mlp-input"
      value={text}
      disabled={readOnly}
      data-testid={testId}
      onChange={(e) => {
        setText(e.target.value);
        onChange(parseLooseValue(e.target.value));
      }}
    />
  );
}

export interface ParametersTableProps {
  step: Step;
  errors: ErrorMap;
  hint: StepHint | undefined;
  readOnly: boolean;
  onSet(name: string, value: Json | undefined): void;
  onRename(from: string, to: string): void;
}

export function ParametersTable({ step, errors, hint, readOnly, onSet, onRename }: ParametersTableProps): ReactElement {
  const [newName, setNewName] = useState("");
  const entries = Object.entries(step.parameters ?? {});
  const add = (): void => {
    if (!PARAM_NAME_RE.test(newName) || newName in (step.parameters ?? {})) return;
    onSet(newName, "");
    setNewName("");
  };
  return (
    <div className="mlp-section" data-testid="parameters-table">
      <div className="mlp-section__title">Parameters</div>
      {entries.length === 0 ? <p className="mlp-help">No local parameters. Drop an output on the node&apos;s “+ parameter” port, or add one.</p> : null}
      {entries.map(([name, value]) => {
        const ref = parseExactRef(value);
        const messages = fieldErrors(errors, step.id, `parameters.${name}`);
        return (
          <div key={name} className={`mlp-field${messages.length ? " mlp-field--error" : ""}`}>
            <div className="mlp-row">
              <input
                className="mlp-input mlp-input--name"
                defaultValue={name}
                disabled={readOnly}
                aria-label="Parameter name"
                onBlur={(e) => e.target.value !== name && PARAM_NAME_RE.test(e.target.value) && onRename(name, e.target.value)}
              />
              {ref ? (
                <span className="mlp-chip" title={String(value)} data-testid={`param-ref-${step.id}-${name}`}>
                  ← {ref.kind === "output" ? `${ref.step}.${ref.output}` : `params.${ref.name}`}
                </span>
              ) : (
                <ValueInput value={value} readOnly={readOnly} testId={`param-value-${step.id}-${name}`} onChange={(v) => onSet(name, v)} />
              )}
              <button type="button" className="mlp-btn mlp-btn--small" title="Remove" disabled={readOnly} onClick={() => onSet(name, undefined)}>
                ✕
              </button>
            </div>
            {messages.map((m, i) => (
              <div key={i} className="mlp-error">
                {m}
              </div>
            ))}
          </div>
        );
      })}
      {!readOnly ? (
        <div className="mlp-row">
          <input className="mlp-input" placeholder="new parameter" value={newName} onChange={(e) => setNewName(e.target.value)} onKeyDown={(e) => e.key === "Enter" && add()} aria-label="New parameter name" />
          <button type="button" className="mlp-btn mlp-btn--small" onClick={add} disabled={!PARAM_NAME_RE.test(newName)}>
            Add
          </button>
        </div>
      ) : null}
      {hint ? (
        <div className="mlp-hints" data-testid={`hints-${step.id}`}>
          <div className="mlp-section__title">
            Last successful run <span className="mlp-help">({hint.run_id}, try {hint.try})</span>
          </div>
          {Object.entries(hint.values).map(([k, v]) => (
            <div key={k} className="mlp-hint">
              <code>{k}</code> = <code>{JSON.stringify(v)}</code>
            </div>
          ))}
        </div>
      ) : null}
    </div>
  );
}
