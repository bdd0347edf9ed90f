// One form row generated from a schema property: the input for its kind, its description, its
// errors. The text is kept locally so a half-typed value does not jump around; it is committed as
// soon as it parses.
import { type ReactElement, useEffect, useState } from "react";
import { formatFieldValue, type FieldSpec, parseFieldInput } from "../logic/schemaForm";
import type { Json, Profile } from "../types";

export interface FieldInputProps {
  field: FieldSpec;
  value: Json | undefined;
  errors: string[];
  profiles: Profile[];
  readOnly: boolean;
  testId: string;
  onChange(value: Json | undefined): void;
}

export function FieldInput({ field, value, errors, profiles, readOnly, testId, onChange }: FieldInputProps): ReactElement {
  const [text, setText] = useState(formatFieldValue(field, value));
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setText((current) => {
      const parsed = parseFieldInput(field, current, value);
      return parsed.ok && JSON.stringify(parsed.value) === JSON.stringify(value) ? current : formatFieldValue(field, value);
    });
  }, [field, value]);

  const commit = (next: string): void => {
    setText(next);
    const parsed = parseFieldInput(field, next, value);
    if (parsed.ok) {
      setProblem(null);
      onChange(parsed.value);
    } else setProblem(parsed.message);
  };
  const id = `mlp-${testId}`;
  const placeholder = field.default !== undefined ? `default: ${JSON.stringify(field.default)}` : field.kind === "duration" ? "30s, 5m, 2h or seconds" : "";
  let input: ReactElement;
  if (field.kind === "boolean" || field.kind === "enum" || field.kind === "profile") {
    const options =
      field.kind === "boolean"
        ? ["true", "false"]
        : field.kind === "enum"
          ? field.options.map(String)
          : profiles.map((p) => p.name);
    const current = text;
    input = (
      <select id={id} className="mlp-input" value={current} disabled={readOnly} onChange={(e) => commit(e.target.value)} data-testid={testId}>
        <option value="">{field.default !== undefined ? `(default: ${String(field.default)})` : "(not set)"}</option>
        {current && !options.includes(current) ? <option value={current}>{current} (unknown)</option> : null}
        {options.map((option) => (
          <option key={option} value={option}>
            {field.kind === "profile" ? `${option} (${profiles.find((p) => p.name === option)?.backend ?? ""})` : option}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === "json") {
    input = <textarea id={id} className="mlp-input mlp-input--code" rows={2} value={text} disabled={readOnly} placeholder={placeholder || "JSON"} onChange={(e) => commit(e.target.value)} data-testid={testId} />;
  } else {
    input = <input id={id} className="mlp-input" value={text} disabled={readOnly} placeholder={placeholder} onChange={(e) => commit(e.target.value)} data-testid={testId} />;
  }
  const messages = problem ? [problem, ...errors] : errors;
  return (
    <div className={`mlp-field${messages.length ? " mlp-field--error" : ""}`}>
      <label htmlFor={id} className="mlp-field__label">
        {field.label}
        {field.required ? <span className="mlp-required"> *</span> : null}
      </label>
      {input}
      {field.description ? <div className="mlp-field__help">{field.description}</div> : null}
      {messages.map((m, i) => (
        <div key={i} className="mlp-error" data-testid={`${testId}-error`}>
          {m}
        </div>
      ))}
    </div>
  );
}
