// Every step type the server's registry has, from the palette: drag one onto the canvas (or click).
import type { DragEvent, ReactElement } from "react";
import { useDesigner } from "../context";
import { DRAG_MIME } from "./Canvas";

export interface DropPayload {
  kind: "type" | "file";
  type?: string;
  root?: string;
  path?: string;
}

export function startDrag(event: DragEvent, payload: DropPayload): void {
  event.dataTransfer.setData(DRAG_MIME, JSON.stringify(payload));
  event.dataTransfer.setData("text/plain", payload.path ?? payload.type ?? "");
  event.dataTransfer.effectAllowed = "copy";
}

export function Palette({ onAdd }: { onAdd(payload: DropPayload): void }): ReactElement {
  const { palette, readOnly } = useDesigner();
  return (
    <div className="mlp-list" data-testid="palette">
      <p className="mlp-help">Drag a step type onto the canvas, or click it.</p>
      {palette.step_types.map((stepType) => (
        <button
          type="button"
          key={stepType.type}
          className="mlp-list__item"
          draggable={!readOnly}
          disabled={readOnly}
          onDragStart={(event) => startDrag(event, { kind: "type", type: stepType.type })}
          onClick={() => onAdd({ kind: "type", type: stepType.type })}
          data-testid={`palette-${stepType.type}`}
        >
          <span className={`mlp-badge mlp-badge--${stepType.type}`}>{stepType.type}</span>
          <span className="mlp-list__text">{stepType.description}</span>
        </button>
      ))}
    </div>
  );
}
