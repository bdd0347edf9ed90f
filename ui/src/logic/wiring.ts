// Wiring on the canvas: a connection writes a reference into the target step's parameter (or a
// plain `depends_on` when it carries no value); removing an edge removes what it stood for.
import type { Json, WorkflowDocument } from "../types";
import { findStep, setStepField, setStepParameter } from "./document";
import { type EdgeData, handleName, NEW_INPUT, PARAMS_NODE } from "./graph";
import { asList } from "./lists";
import { formatRef, parseExactRef, type Ref, refsEqual } from "./refs";

export interface Connection {
  source: string;
  target: string;
  sourceHandle?: string | null;
  targetHandle?: string | null;
}

export type WireResult = { ok: true; doc: WorkflowDocument; param: string | null } | { ok: false; reason: string };

/** The reference a connection's source stands for, or null for a plain dependency. */
export function sourceRef(conn: Connection): Ref | null {
  if (conn.source === PARAMS_NODE) {
    const name = handleName(conn.sourceHandle, "param");
    return name === null ? null : { kind: "param", name };
  }
  const output = handleName(conn.sourceHandle, "out");
  return output === null ? null : { kind: "output", step: conn.source, output };
}

/** Whether adding an edge source -> target closes a cycle through references and depends_on. */
export function createsCycle(doc: WorkflowDocument, source: string, target: string): boolean {
  const upstream = new Map<string, Set<string>>();
  for (const step of doc.steps) {
    const ups = new Set(asList(step.depends_on));
    for (const value of Object.values(step.parameters ?? {})) {
      const ref = parseExactRef(value);
      if (ref?.kind === "output") ups.add(ref.step);
    }
    upstream.set(step.id, ups);
  }
  const seen = new Set<string>();
  const stack = [source];
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (id === target) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(upstream.get(id) ?? []));
  }
  return false;
}

/** Applies a connection drawn on the canvas. */
export function connect(doc: WorkflowDocument, conn: Connection): WireResult {
  const target = findStep(doc, conn.target);
  if (!target) return { ok: false, reason: "connect to a step" };
  if (conn.source === conn.target) return { ok: false, reason: "a step cannot depend on itself" };
  if (conn.source !== PARAMS_NODE && !findStep(doc, conn.source)) return { ok: false, reason: "unknown source step" };
  if (conn.source !== PARAMS_NODE && createsCycle(doc, conn.source, conn.target)) {
    return { ok: false, reason: `${conn.target} already runs before ${conn.source}: this edge would make a cycle` };
  }
  const ref = sourceRef(conn);
  const input = handleName(conn.targetHandle, "in");
  if (ref === null) {
    if (conn.source === PARAMS_NODE) return { ok: false, reason: "drag from one parameter" };
    const deps = asList(target.depends_on);
    if (deps.includes(conn.source)) return { ok: true, doc, param: null };
    return { ok: true, doc: setStepField(doc, target.id, "depends_on", [...deps, conn.source]), param: null };
  }
  const param = input === null || input === NEW_INPUT ? (ref.kind === "output" ? ref.output : ref.name) : input;
  const safe = param.replace(/[^A-Za-z0-9_]/g, "_");
  return { ok: true, doc: setStepParameter(doc, target.id, safe, formatRef(ref)), param: safe };
}

/** Removes what an edge stands for: a `depends_on` entry, or the reference in a parameter. */
export function disconnect(doc: WorkflowDocument, edge: { source: string; target: string; data: EdgeData }): WorkflowDocument {
  const target = findStep(doc, edge.target);
  if (!target) return doc;
  if (edge.data.kind === "dep") {
    const deps = asList(target.depends_on).filter((dep) => dep !== edge.source);
    return setStepField(doc, target.id, "depends_on", deps.length ? deps : undefined);
  }
  const { param, ref } = edge.data;
  const value = target.parameters?.[param];
  if (value === undefined) return doc;
  const exact = parseExactRef(value);
  if (exact && refsEqual(exact, ref)) return setStepParameter(doc, target.id, param, undefined);
  return setStepParameter(doc, target.id, param, removeRefText(value, ref));
}

function removeRefText(value: Json, ref: Ref): Json {
  if (typeof value !== "string") return value;
  const text = formatRef(ref).replace(/[$.{}]/g, "\\$&").replace(/ /g, "\\s*");
  return value.replace(new RegExp(text, "g"), "");
}
