// Validation errors -> where they are shown: on a step's node and its field, or on the document
// (global parameters, the DAG's fields). The server sends {step, field, message}; a field written
// as `steps[2].notebook` or `steps.2.notebook` is mapped to its step too.
import type { ValidationError, WorkflowDocument } from "../types";

export interface StepErrors {
  messages: string[];
  fields: Record<string, string[]>;
}

export interface ErrorMap {
  steps: Record<string, StepErrors>;
  document: { field: string | null; message: string }[];
  count: number;
}

const STEP_PATH_RE = /^steps(?:\[(\d+)\]|\.(\d+))(?:\.(.+))?$/;

export function mapErrors(errors: ValidationError[], doc: WorkflowDocument): ErrorMap {
  const ids = new Set(doc.steps.map((step) => step.id));
  const map: ErrorMap = { steps: {}, document: [], count: errors.length };
  for (const error of errors) {
    let step = error.step;
    let field = error.field;
    if (field) {
      const match = STEP_PATH_RE.exec(field);
      if (match) {
        const index = Number(match[1] ?? match[2]);
        step = step ?? doc.steps[index]?.id ?? null;
        field = match[3] ?? null;
      }
    }
    if (step === null || !ids.has(step)) {
      map.document.push({ field, message: error.message });
      continue;
    }
    const entry = (map.steps[step] ??= { messages: [], fields: {} });
    entry.messages.push(error.message);
    if (field) (entry.fields[field] ??= []).push(error.message);
  }
  return map;
}

/** The messages for a step's field and everything under it (`parameters` covers `parameters.C`). */
export function fieldErrors(map: ErrorMap, step: string, field: string): string[] {
  const fields = map.steps[step]?.fields ?? {};
  return Object.entries(fields)
    .filter(([name]) => name === field || name.startsWith(`${field}.`) || name.startsWith(`${field}[`))
    .flatMap(([, messages]) => messages);
}

/** The messages about a global parameter (`params.C`, `params.C.default`). */
export function paramErrors(map: ErrorMap, name: string): string[] {
  return map.document
    .filter((e) => e.field === `params.${name}` || (e.field ?? "").startsWith(`params.${name}.`))
    .map((e) => e.message);
}
