// Auto-layout with dagre: steps left to right along their edges.
import dagre from "@dagrejs/dagre";
import type { Position, WorkflowDocument } from "../types";
import { documentToGraph, PARAMS_NODE, type StepNodeData } from "./graph";

export const NODE_WIDTH = 240;

/** The height a step node is drawn with (header, then one row per port). */
export function nodeHeight(data: StepNodeData): number {
  return 64 + 22 * Math.max(data.inputs.length + 1, data.outputs.length);
}

/** New positions of every step (top-left corners, as React Flow stores them). */
export function autoLayout(doc: WorkflowDocument): Record<string, Position> {
  const graph = documentToGraph(doc);
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 90, marginx: 40, marginy: 40 });
  g.setDefaultEdgeLabel(() => ({}));
  const heights = new Map<string, number>();
  for (const node of graph.nodes) {
    if (node.kind !== "step") continue;
    const height = nodeHeight(node.data as StepNodeData);
    heights.set(node.id, height);
    g.setNode(node.id, { width: NODE_WIDTH, height });
  }
  for (const edge of graph.edges) if (edge.source !== PARAMS_NODE) g.setEdge(edge.source, edge.target);
  dagre.layout(g);
  const positions: Record<string, Position> = {};
  for (const id of g.nodes()) {
    const node = g.node(id);
    positions[id] = { x: Math.round(node.x - NODE_WIDTH / 2), y: Math.round(node.y - (heights.get(id) ?? 0) / 2) };
  }
  return positions;
}
