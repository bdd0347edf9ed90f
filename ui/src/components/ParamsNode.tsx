// The global parameters on the canvas: one source port each, wired like a step output.
import { Handle, type NodeProps, Position } from "@xyflow/react";
import { memo, type ReactElement } from "react";
import { usePortsChanged } from "../hooks/usePortsChanged";
import { paramHandle } from "../logic/graph";

function ParamsNodeView({ id, data }: NodeProps & { data: { params: string[] } }): ReactElement {
  usePortsChanged(id, data.params);
  return (
    <div className="mlp-node mlp-node--params" data-testid="node-params">
      <div className="mlp-node__header">
        <span className="mlp-badge mlp-badge--params">params</span>
        <span className="mlp-node__id">Global parameters</span>
      </div>
      {data.params.length === 0 ? <div className="mlp-node__file">add them in the Parameters tab</div> : null}
      {data.params.map((name) => (
        <div key={name} className="mlp-port mlp-port--out" data-testid={`param-${name}`}>
          <span className="mlp-port__name">{name}</span>
          <Handle type="source" position={Position.Right} id={paramHandle(name)} className="mlp-handle mlp-handle--param" />
        </div>
      ))}
    </div>
  );
}

export const ParamsNode = memo(ParamsNodeView);
