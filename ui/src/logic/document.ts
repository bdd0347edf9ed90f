// Pure edits of a workflow document: add, remove, rename and change steps, move nodes.
// The document is the designer's single source of truth; the canvas is drawn from it.
import type { Json, Position, Step, WorkflowDocument } from "../types";
import { asList, fromList } from "./lists";
import { parseExactRef, renameStepInValue } from "./refs";

export const STEP_ID_RE = /^[A-Za-z0-9_-]+$/;

export function emptyDocument(id = "my_workflow"): WorkflowDocument {
  return { version: 1, id, schedule: null, start_date: "2026-01-01", catchup: false, steps: [] } as WorkflowDocument;
}

export function findStep(doc: WorkflowDocument, id: string): Step | undefined {
  return doc.steps.find((step) => step.id === id);
}

/** A step id made from `base` (a file name, a type) that no step has yet. */
export function uniqueStepId(doc: WorkflowDocument, base: string): string {
  const clean = base.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "step";
  const taken = new Set(doc.steps.map((step) => step.id));
  if (!taken.has(clean)) return clean;
  for (let i = 2; ; i += 1) if (!taken.has(`${clean}_${i}`)) return `${clean}_${i}`;
}

export function addStep(doc: WorkflowDocument, step: Step, position?: Position): WorkflowDocument {
  const next: WorkflowDocument = { ...doc, steps: [...doc.steps, step] };
  return position ? setPositions(next, { [step.id]: position }) : next;
}

export function updateStep(doc: WorkflowDocument, id: string, change: (step: Step) => Step): WorkflowDocument {
  return { ...doc, steps: doc.steps.map((step) => (step.id === id ? change(step) : step)) };
}

/** Sets (or with `undefined` removes) one top-level field of a step. */
export function setStepField(doc: WorkflowDocument, id: string, field: string, value: Json | undefined): WorkflowDocument {
  return updateStep(doc, id, (step) => {
    const next: Step = { ...step };
    if (value === undefined) delete next[field];
    else next[field] = value;
    return next;
  });
}

/** Sets (or removes) one local parameter of a step, keeping the others' order. */
export function setStepParameter(doc: WorkflowDocument, id: string, name: string, value: Json | undefined): WorkflowDocument {
  return updateStep(doc, id, (step) => {
    const parameters = { ...(step.parameters ?? {}) };
    if (value === undefined) delete parameters[name];
    else parameters[name] = value;
    const next: Step = { ...step, parameters };
    if (Object.keys(parameters).length === 0) delete next.parameters;
    return next;
  });
}

/** Removes steps, their node positions, the `depends_on` entries and the references that were their edges. */
export function removeSteps(doc: WorkflowDocument, ids: string[]): WorkflowDocument {
  const gone = new Set(ids);
  const steps = doc.steps
    .filter((step) => !gone.has(step.id))
    .map((step) => {
      const next: Step = { ...step };
      const deps = asList(step.depends_on).filter((dep) => !gone.has(dep));
      const depsValue = fromList(deps);
      if (depsValue === undefined) delete next.depends_on;
      else next.depends_on = typeof step.depends_on === "string" && deps.length === 1 ? deps[0] : depsValue;
      if (step.parameters) {
        const parameters = Object.fromEntries(
          Object.entries(step.parameters).filter(([, value]) => {
            const ref = parseExactRef(value);
            return !(ref?.kind === "output" && gone.has(ref.step));
          }),
        );
        if (Object.keys(parameters).length === 0) delete next.parameters;
        else next.parameters = parameters;
      }
      return next;
    });
  const next: WorkflowDocument = { ...doc, steps };
  if (doc.layout) {
    const layout = Object.fromEntries(Object.entries(doc.layout).filter(([id]) => !gone.has(id)));
    next.layout = layout;
  }
  return next;
}

/** Renames a step: its id, every reference to its outputs, `depends_on` entries and its position. */
export function renameStep(doc: WorkflowDocument, from: string, to: string): WorkflowDocument {
  if (from === to) return doc;
  const steps = doc.steps.map((step) => {
    const renamed = renameStepInValue(step as Json, from, to) as Step;
    const next: Step = { ...renamed, id: step.id === from ? to : step.id };
    if (step.depends_on !== undefined) {
      next.depends_on =
        typeof step.depends_on === "string"
          ? step.depends_on === from
            ? to
            : step.depends_on
          : asList(step.depends_on).map((dep) => (dep === from ? to : dep));
    }
    return next;
  });
  const next: WorkflowDocument = { ...doc, steps };
  if (doc.layout) {
    next.layout = Object.fromEntries(Object.entries(doc.layout).map(([id, pos]) => [id === from ? to : id, pos]));
  }
  return next;
}

/** Node positions go in `layout:` (the builder ignores it); rounded so files stay tidy. */
export function setPositions(doc: WorkflowDocument, positions: Record<string, Position>): WorkflowDocument {
  const layout = { ...(doc.layout ?? {}) };
  for (const [id, pos] of Object.entries(positions)) layout[id] = { x: Math.round(pos.x), y: Math.round(pos.y) };
  return { ...doc, layout };
}

export function stepOutputs(step: Step): string[] {
  return asList(step.outputs);
}

export function setStepOutputs(doc: WorkflowDocument, id: string, outputs: string[]): WorkflowDocument {
  return setStepField(doc, id, "outputs", fromList(outputs));
}

/** The document as it is saved: `layout` kept only for steps that exist. */
export function documentForSave(doc: WorkflowDocument): WorkflowDocument {
  if (!doc.layout) return doc;
  const ids = new Set(doc.steps.map((step) => step.id));
  const layout = Object.fromEntries(Object.entries(doc.layout).filter(([id]) => ids.has(id)));
  const next: WorkflowDocument = { ...doc, layout };
  if (Object.keys(layout).length === 0) delete next.layout;
  return next;
}

/** Renames a local parameter of a step in place (its edges follow, being its value). */
export function renameStepParameter(doc: WorkflowDocument, id: string, from: string, to: string): WorkflowDocument {
  return updateStep(doc, id, (step) => {
    if (!step.parameters || !(from in step.parameters) || to in step.parameters) return step;
    const parameters = Object.fromEntries(Object.entries(step.parameters).map(([k, v]) => [k === from ? to : k, v]));
    return { ...step, parameters };
  });
}
