// Global parameters (the DAG's params): name, type, default, description. Wire one into a step
// from the "Global parameters" node on the canvas.
import { type ReactElement, useEffect, useState } from "react";
import { useDesigner } from "../context";
import { paramErrors } from "../logic/errors";
import {
  convertDefault,
  formatDefault,
  type GlobalParam,
  listParams,
  PARAM_NAME_RE,
  PARAM_TYPES,
  type ParamType,
  parseDefault,
  removeParam,
  renameParam,
  setParam,
} from "../logic/params";
import type { WorkflowDocument } from "../types";

export interface ParamsPanelProps {
  doc: WorkflowDocument;
  onChange(doc: WorkflowDocument, key?: string): void;
}

function ParamRow({ param, doc, onChange }: { param: GlobalParam } & ParamsPanelProps): ReactElement {
  const { errors, readOnly } = useDesigner();
  const [name, setName] = useState(param.name);
  const [text, setText] = useState(formatDefault(param.default));
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => setName(param.name), [param.name]);
  useEffect(() => setText(formatDefault(param.default)), [param.default]);

  const commitName = (): void => {
    if (name === param.name) return;
    if (!PARAM_NAME_RE.test(name) || (doc.params && name in doc.params)) {
      setProblem(`"${name}" is not a free parameter name (letters, digits, _)`);
      setName(param.name);
      return;
    }
    setProblem(null);
    onChange(renameParam(doc, param.name, name));
  };
  const commitDefault = (value: string, type: ParamType = param.type): void => {
    setText(value);
    try {
      const parsed = parseDefault(type, value);
      setProblem(null);
      onChange(setParam(doc, { ...param, type, default: parsed }), `param.${param.name}.default`);
    } catch (error) {
      setProblem(`default: ${(error as Error).message}`);
    }
  };
  const messages = [...paramErrors(errors, param.name), ...(problem ? [problem] : [])];
  return (
    <div className={`mlp-param${messages.length ? " mlp-param--error" : ""}`} data-testid={`global-param-${param.name}`}>
      <div className="mlp-row">
        <input
          className="mlp-input mlp-input--name"
          aria-label="Parameter name"
          value={name}
          disabled={readOnly}
          onChange={(e) => setName(e.target.value)}
          onBlur={commitName}
          onKeyDown={(e) => e.key === "Enter" && commitName()}
        />
        <select
          className="mlp-input mlp-input--type"
          aria-label="Parameter type"
          value={param.type}
          disabled={readOnly}
          onChange={(e) => {
            const type = e.target.value as ParamType;
            const value = convertDefault(type, text);
            setProblem(null);
            setText(formatDefault(value));
            onChange(setParam(doc, { ...param, type, default: value }));
          }}
        >
          {PARAM_TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
        <button type="button" className="mlp-btn mlp-btn--small" title="Remove" disabled={readOnly} onClick={() => onChange(removeParam(doc, param.name))}>
          ✕
        </button>
      </div>
      {param.type === "boolean" ? (
        <select className="mlp-input" aria-label="Default" value={text} disabled={readOnly} onChange={(e) => commitDefault(e.target.value)}>
          <option>true</option>
          <option>false</option>
        </select>
      ) : param.type === "null" ? null : (
        <input className="mlp-input" aria-label="Default" placeholder="default" value={text} disabled={readOnly} onChange={(e) => commitDefault(e.target.value)} />
      )}
      <input
        className="mlp-input"
        aria-label="Description"
        placeholder="description (shown in the trigger form)"
        value={param.description}
        disabled={readOnly}
        onChange={(e) => onChange(setParam(doc, { ...param, description: e.target.value }), `param.${param.name}.description`)}
      />
      {messages.map((m, i) => (
        <p key={i} className="mlp-error">
          {m}
        </p>
      ))}
    </div>
  );
}

export function ParamsPanel({ doc, onChange }: ParamsPanelProps): ReactElement {
  const { readOnly } = useDesigner();
  const params = listParams(doc);
  const add = (): void => {
    let i = params.length + 1;
    while (doc.params && `param${i}` in doc.params) i += 1;
    onChange(setParam(doc, { name: `param${i}`, type: "string", default: "", description: "" }));
  };
  return (
    <div className="mlp-list" data-testid="params-panel">
      <p className="mlp-help">Global parameters are the DAG&apos;s params: the trigger form asks for them. Wire one from the canvas&apos;s parameters node into a step.</p>
      {params.map((param) => (
        <ParamRow key={param.name} param={param} doc={doc} onChange={onChange} />
      ))}
      <button type="button" className="mlp-btn" onClick={add} disabled={readOnly} data-testid="add-param">
        + Add parameter
      </button>
    </div>
  );
}
