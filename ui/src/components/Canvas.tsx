// The graph editor: React Flow drawn from the document. Dragging moves nodes locally and commits
// the position to `layout:` when the drag ends (one undo step); connections and deletions go
// through the pure wiring functions.
import {
  applyNodeChanges,
  Background,
  type Connection,
  Controls,
  type Edge,
  type EdgeChange,
  MarkerType,
  MiniMap,
  type Node,
  type NodeChange,
  ReactFlow,
  useReactFlow,
} from "@xyflow/react";
import { type DragEvent, type ReactElement, useCallback, useEffect, useMemo, useState } from "react";
import { documentToGraph, type EdgeData, type GraphEdge, PARAMS_NODE } from "../logic/graph";
import type { Position, WorkflowDocument } from "../types";
import { ParamsNode } from "./ParamsNode";
import { StepNode } from "./StepNode";

const nodeTypes = { step: StepNode, params: ParamsNode };

export const DRAG_MIME = "application/x-mlplatform-designer";

export interface CanvasProps {
  doc: WorkflowDocument;
  selected: string | null;
  readOnly: boolean;
  fitSignal: number;
  onSelect(id: string | null): void;
  onMove(positions: Record<string, Position>): void;
  onConnect(connection: Connection): void;
  onDelete(steps: string[], edges: GraphEdge[]): void;
  onDrop(payload: string, position: Position): void;
}

function toFlowEdge(edge: GraphEdge, selected: boolean): Edge<EdgeData> {
  const dep = edge.data.kind === "dep";
  return {
    id: edge.id,
    source: edge.source,
    target: edge.target,
    sourceHandle: dep ? "dep-out" : edge.sourceHandle,
    targetHandle: dep ? "dep-in" : edge.targetHandle,
    data: edge.data,
    selected,
    className: dep ? "mlp-edge--dep" : edge.source === PARAMS_NODE ? "mlp-edge--param" : "mlp-edge--ref",
    markerEnd: { type: MarkerType.ArrowClosed },
    ...(edge.data.kind === "ref" && !edge.data.exact ? { label: "in text" } : {}),
  };
}

export function Canvas(props: CanvasProps): ReactElement {
  const { doc, selected, readOnly, fitSignal, onSelect, onMove, onConnect, onDelete, onDrop } = props;
  const flow = useReactFlow();
  const graph = useMemo(() => documentToGraph(doc), [doc]);
  const [nodes, setNodes] = useState<Node[]>([]);
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());

  useEffect(() => {
    setNodes((previous) => {
      const byId = new Map(previous.map((n) => [n.id, n]));
      return graph.nodes.map((node) => {
        const old = byId.get(node.id);
        return {
          id: node.id,
          type: node.kind,
          position: node.position,
          data: node.data as unknown as Record<string, unknown>,
          selected: node.id === selected,
          deletable: node.kind === "step" && !readOnly,
          draggable: !readOnly,
          ...(old?.measured ? { measured: old.measured } : {}),
        };
      });
    });
  }, [graph, selected, readOnly]);

  useEffect(() => {
    if (fitSignal > 0) void flow.fitView({ padding: 0.15, duration: 200 });
  }, [fitSignal, flow]);

  const edges = useMemo(() => graph.edges.map((e) => toFlowEdge(e, selectedEdges.has(e.id))), [graph, selectedEdges]);

  const onNodesChange = useCallback(
    (changes: NodeChange[]) => {
      const kept = changes.filter((c) => c.type !== "remove");
      setNodes((current) => applyNodeChanges(kept, current));
      for (const change of kept) {
        if (change.type === "select" && change.selected && change.id !== PARAMS_NODE) onSelect(change.id);
      }
    },
    [onSelect],
  );

  const onNodeDragStop = useCallback(
    (_event: unknown, _node: Node, dragged: Node[]) => {
      const moved = Object.fromEntries(dragged.filter((n) => n.id !== PARAMS_NODE).map((n) => [n.id, n.position]));
      if (Object.keys(moved).length > 0) onMove(moved);
    },
    [onMove],
  );

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    setSelectedEdges((current) => {
      const next = new Set(current);
      for (const change of changes) if (change.type === "select") change.selected ? next.add(change.id) : next.delete(change.id);
      return next;
    });
  }, []);

  const handleDelete = useCallback(
    ({ nodes: gone, edges: goneEdges }: { nodes: Node[]; edges: Edge[] }) => {
      if (readOnly) return;
      const steps = gone.map((n) => n.id).filter((id) => id !== PARAMS_NODE);
      const removed = graph.edges.filter((e) => goneEdges.some((g) => g.id === e.id) && !steps.includes(e.target));
      onDelete(steps, removed);
      setSelectedEdges(new Set());
    },
    [graph, onDelete, readOnly],
  );

  const handleDragOver = (event: DragEvent): void => {
    if (event.dataTransfer.types.includes(DRAG_MIME)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    }
  };

  const handleDrop = (event: DragEvent): void => {
    const payload = event.dataTransfer.getData(DRAG_MIME);
    if (!payload || readOnly) return;
    event.preventDefault();
    const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    onDrop(payload, { x: position.x - 120, y: position.y - 30 });
  };

  return (
    <div className="mlp-canvas" onDragOver={handleDragOver} onDrop={handleDrop} data-testid="canvas">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={onNodeDragStop}
        onConnect={readOnly ? undefined : onConnect}
        onDelete={handleDelete}
        onPaneClick={() => onSelect(null)}
        deleteKeyCode={["Delete", "Backspace"]}
        nodesConnectable={!readOnly}
        minZoom={0.2}
        proOptions={{ hideAttribution: false }}
      >
        <Background gap={16} />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable />
      </ReactFlow>
    </div>
  );
}
