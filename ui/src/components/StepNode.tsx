// A step on the canvas: its inputs (local parameters) as target ports on the left, its declared
// outputs as source ports on the right, plain dependency ports top and bottom, its errors and the
// values its last successful run recorded.
import { Handle, type NodeProps, Position } from "@xyflow/react";
import { memo, type ReactElement } from "react";
import { useDesigner } from "../context";
import { usePortsChanged } from "../hooks/usePortsChanged";
import { fileField } from "../logic/catalog";
import { fieldErrors } from "../logic/errors";
import { inHandle, NEW_INPUT, outHandle, type StepNodeData } from "../logic/graph";
import { parseExactRef } from "../logic/refs";
import type { Json } from "../types";

function short(value: Json | undefined): string {
  if (value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 24 ? `${text.slice(0, 23)}…` : text;
}

function StepNodeView({ id, data, selected }: NodeProps & { data: StepNodeData }): ReactElement {
  const { errors, hints, stepType } = useDesigner();
  const { step, inputs, outputs } = data;
  usePortsChanged(id, [...inputs.map((n) => `in:${n}`), ...outputs.map((n) => `out:${n}`)]);
  const stepErrors = errors.steps[step.id];
  const hint = hints[step.id];
  const type = stepType(step.type);
  const file = type ? fileField(type) : null;
  const fileValue = file ? step[file] : undefined;
  return (
    <div
      className={`mlp-node${selected ? " mlp-node--selected" : ""}${stepErrors ? " mlp-node--error" : ""}`}
      data-testid={`node-${step.id}`}
      title={step.description ? String(step.description) : undefined}
    >
      <Handle type="target" position={Position.Top} id="dep-in" className="mlp-handle mlp-handle--dep" />
      <div className="mlp-node__header">
        <span className={`mlp-badge mlp-badge--${step.type}`}>{step.type}</span>
        <span className="mlp-node__id">{step.id}</span>
        {stepErrors ? (
          <span className="mlp-node__errcount" data-testid={`node-errors-${step.id}`}>
            {stepErrors.messages.length}
          </span>
        ) : null}
      </div>
      {typeof fileValue === "string" ? <div className="mlp-node__file">{fileValue.split("/").pop()}</div> : null}
      <div className="mlp-node__ports">
        <div className="mlp-node__inputs">
          {inputs.map((name) => {
            const value = step.parameters?.[name];
            const wired = parseExactRef(value) !== null;
            const bad = fieldErrors(errors, step.id, `parameters.${name}`).length > 0;
            return (
              <div key={name} className={`mlp-port mlp-port--in${bad ? " mlp-port--error" : ""}`} data-testid={`in-${step.id}-${name}`}>
                <Handle type="target" position={Position.Left} id={inHandle(name)} className="mlp-handle" />
                <span className="mlp-port__name">{name}</span>
                {!wired ? <span className="mlp-port__value">{short(value)}</span> : null}
              </div>
            );
          })}
          <div className="mlp-port mlp-port--in mlp-port--new" title="drop an output here to add a parameter named after it">
            <Handle type="target" position={Position.Left} id={inHandle(NEW_INPUT)} className="mlp-handle mlp-handle--new" />
            <span className="mlp-port__name">+ parameter</span>
          </div>
        </div>
        <div className="mlp-node__outputs">
          {outputs.map((name) => (
            <div key={name} className="mlp-port mlp-port--out" data-testid={`out-${step.id}-${name}`}>
              {hint && name in hint.values ? (
                <span className="mlp-port__hint" title={`last run ${hint.run_id}, try ${hint.try}`}>
                  {short(hint.values[name])}
                </span>
              ) : null}
              <span className="mlp-port__name">{name}</span>
              <Handle type="source" position={Position.Right} id={outHandle(name)} className="mlp-handle mlp-handle--out" />
            </div>
          ))}
        </div>
      </div>
      {stepErrors ? (
        <ul className="mlp-node__errors" data-testid={`node-error-list-${step.id}`}>
          {stepErrors.messages.slice(0, 3).map((message, i) => (
            <li key={i}>{message}</li>
          ))}
          {stepErrors.messages.length > 3 ? <li>… {stepErrors.messages.length - 3} more</li> : null}
        </ul>
      ) : null}
      <Handle type="source" position={Position.Bottom} id="dep-out" className="mlp-handle mlp-handle--dep" />
    </div>
  );
}

export const StepNode = memo(StepNodeView);
