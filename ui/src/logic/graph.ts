// Document <-> graph. Nodes are the steps (plus one node for the global parameters); edges are the
// references (`${{ steps.A.outputs.x }}` in a parameter of B: A.out:x -> B.in:param), the parameter
// references (params node -> B.in:param) and plain `depends_on` (no handles).
import type { Json, Position, Step, WorkflowDocument } from "../types";
import { asList } from "./lists";
import { listParams } from "./params";
import { findRefs, formatRef, parseExactRef, type Ref } from "./refs";

/** Not a valid step id (`$` is not allowed in ids), so it never clashes with a step. */
export const PARAMS_NODE = "$params";
export const NEW_INPUT = "+";

export const outHandle = (name: string): string => `out:${name}`;
export const inHandle = (name: string): string => `in:${name}`;
export const paramHandle = (name: string): string => `param:${name}`;

export function handleName(handle: string | null | undefined, prefix: "out" | "in" | "param"): string | null {
  if (!handle || !handle.startsWith(`${prefix}:`)) return null;
  return handle.slice(prefix.length + 1);
}

export type EdgeData =
  | { kind: "dep" }
  | { kind: "ref"; param: string; ref: Ref; exact: boolean };

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string | null;
  targetHandle: string | null;
  data: EdgeData;
}

export interface StepNodeData {
  step: Step;
  inputs: string[];
  outputs: string[];
}

export interface GraphNode {
  id: string;
  position: Position;
  data: StepNodeData | { params: string[] };
  kind: "step" | "params";
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

function refEdge(target: string, param: string, ref: Ref, exact: boolean): GraphEdge {
  const source = ref.kind === "output" ? ref.step : PARAMS_NODE;
  const sourceHandle = ref.kind === "output" ? outHandle(ref.output) : paramHandle(ref.name);
  return {
    id: `ref:${source}:${sourceHandle}->${target}:${param}`,
    source,
    target,
    sourceHandle,
    targetHandle: inHandle(param),
    data: { kind: "ref", param, ref, exact },
  };
}

export function depEdge(source: string, target: string): GraphEdge {
  return { id: `dep:${source}->${target}`, source, target, sourceHandle: null, targetHandle: null, data: { kind: "dep" } };
}

/** Where a step without a saved position goes: a simple grid, left to right. */
export function defaultPosition(index: number): Position {
  return { x: 80 + (index % 4) * 300, y: 80 + Math.floor(index / 4) * 220 };
}

export function paramsNodePosition(doc: WorkflowDocument): Position {
  const xs = doc.steps.map((step, i) => (doc.layout?.[step.id] ?? defaultPosition(i)).x);
  const ys = doc.steps.map((step, i) => (doc.layout?.[step.id] ?? defaultPosition(i)).y);
  return { x: (xs.length ? Math.min(...xs) : 80) - 280, y: ys.length ? Math.min(...ys) : 80 };
}

export function documentToGraph(doc: WorkflowDocument): Graph {
  const stepIds = new Set(doc.steps.map((step) => step.id));
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const params = listParams(doc).map((param) => param.name);
  if (params.length > 0 || doc.steps.some((step) => findRefs(step.parameters ?? null).some((r) => r.kind === "param"))) {
    nodes.push({ id: PARAMS_NODE, kind: "params", position: paramsNodePosition(doc), data: { params } });
  }
  doc.steps.forEach((step, index) => {
    nodes.push({
      id: step.id,
      kind: "step",
      position: doc.layout?.[step.id] ?? defaultPosition(index),
      data: { step, inputs: Object.keys(step.parameters ?? {}), outputs: asList(step.outputs) },
    });
    for (const [param, value] of Object.entries(step.parameters ?? {})) {
      const exact = parseExactRef(value) !== null;
      for (const ref of findRefs(value)) {
        if (ref.kind === "output" && !stepIds.has(ref.step)) continue; // the validator reports it
        edges.push(refEdge(step.id, param, ref, exact));
      }
    }
    for (const dep of asList(step.depends_on)) if (stepIds.has(dep)) edges.push(depEdge(dep, step.id));
  });
  return { nodes, edges };
}

/**
 * The document a graph stands for: steps in node order, positions in `layout`, `depends_on` from
 * the plain edges and exact references from the reference edges (a parameter whose exact-reference
 * edge is gone is removed). `base` gives the document-level fields.
 */
export function graphToDocument(base: WorkflowDocument, graph: Graph): WorkflowDocument {
  const layout: Record<string, Position> = {};
  const steps: Step[] = [];
  for (const node of graph.nodes) {
    if (node.kind !== "step") continue;
    const data = node.data as StepNodeData;
    layout[node.id] = { x: Math.round(node.position.x), y: Math.round(node.position.y) };
    const incoming = graph.edges.filter((edge) => edge.target === node.id);
    const step: Step = { ...data.step, id: node.id };
    const parameters: Record<string, Json> = {};
    for (const [name, value] of Object.entries(data.step.parameters ?? {})) {
      if (parseExactRef(value) === null) parameters[name] = value;
      else {
        const edge = incoming.find((e) => e.data.kind === "ref" && e.data.param === name && e.data.exact);
        if (edge && edge.data.kind === "ref") parameters[name] = formatRef(edge.data.ref);
      }
    }
    for (const edge of incoming) {
      if (edge.data.kind === "ref" && edge.data.exact && !(edge.data.param in parameters)) {
        parameters[edge.data.param] = formatRef(edge.data.ref);
      }
    }
    if (Object.keys(parameters).length > 0 || data.step.parameters !== undefined) step.parameters = parameters;
    const deps = incoming.filter((edge) => edge.data.kind === "dep").map((edge) => edge.source);
    if (deps.length === 0) delete step.depends_on;
    else step.depends_on = typeof data.step.depends_on === "string" && deps.length === 1 ? deps[0] : deps;
    steps.push(step);
  }
  return { ...base, steps, layout };
}
