// Global parameters (`params:`): the long form {type, default, description} and the shorthand
// `name: default`, as the side panel edits them.
import type { Json, ParamSpec, WorkflowDocument } from "../types";
import { renameParamInValue } from "./refs";

export const PARAM_TYPES = ["string", "integer", "number", "boolean", "array", "object", "null"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export interface GlobalParam {
  name: string;
  type: ParamType;
  default: Json;
  description: string;
}

export const PARAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function inferType(value: Json): ParamType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return "object";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  if (typeof value === "boolean") return "boolean";
  return "string";
}

function isParamSpec(value: unknown): value is ParamSpec {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** One `params:` entry in its long form. */
export function normalizeParam(name: string, value: ParamSpec | Json): GlobalParam {
  if (isParamSpec(value)) {
    const dflt = value.default === undefined ? null : value.default;
    const type = (PARAM_TYPES as readonly string[]).includes(String(value.type))
      ? (value.type as ParamType)
      : inferType(dflt);
    return { name, type, default: dflt, description: typeof value.description === "string" ? value.description : "" };
  }
  return { name, type: inferType(value), default: value, description: "" };
}

export function listParams(doc: WorkflowDocument): GlobalParam[] {
  return Object.entries(doc.params ?? {}).map(([name, value]) => normalizeParam(name, value));
}

/** Writes one parameter (long form, keeping other keys of an existing long form such as `title`). */
export function setParam(doc: WorkflowDocument, param: GlobalParam): WorkflowDocument {
  const params = { ...(doc.params ?? {}) };
  const old = params[param.name];
  const spec: ParamSpec = { ...(isParamSpec(old) ? old : {}), type: param.type, default: param.default };
  if (param.description) spec.description = param.description;
  else delete spec.description;
  params[param.name] = spec;
  return { ...doc, params };
}

export function removeParam(doc: WorkflowDocument, name: string): WorkflowDocument {
  const params = { ...(doc.params ?? {}) };
  delete params[name];
  const next: WorkflowDocument = { ...doc, params };
  if (Object.keys(params).length === 0) delete next.params;
  return next;
}

/** Renames a parameter, keeping its place in `params:` and updating every `${{ params.X }}`. */
export function renameParam(doc: WorkflowDocument, from: string, to: string): WorkflowDocument {
  if (from === to || !doc.params || !(from in doc.params)) return doc;
  const params = Object.fromEntries(Object.entries(doc.params).map(([k, v]) => [k === from ? to : k, v]));
  const steps = doc.steps.map((step) => renameParamInValue(step as Json, from, to) as typeof step);
  return { ...doc, params, steps };
}

/** Parses the default typed in the panel as the parameter's type; throws a message on bad input. */
export function parseDefault(type: ParamType, text: string): Json {
  switch (type) {
    case "string":
      return text;
    case "integer": {
      const n = Number(text);
      if (text.trim() === "" || !Number.isInteger(n)) throw new Error("an integer, such as 3");
      return n;
    }
    case "number": {
      const n = Number(text);
      if (text.trim() === "" || Number.isNaN(n)) throw new Error("a number, such as 0.5");
      return n;
    }
    case "boolean":
      if (text === "true" || text === "false") return text === "true";
      throw new Error("true or false");
    case "null":
      return null;
    default: {
      let parsed: Json;
      try {
        parsed = JSON.parse(text) as Json;
      } catch {
        throw new Error(type === "array" ? 'a JSON list, such as ["a", "b"]' : 'a JSON object, such as {"k": 1}');
      }
      if (type === "array" ? !Array.isArray(parsed) : !isParamSpec(parsed)) {
        throw new Error(type === "array" ? "a JSON list" : "a JSON object");
      }
      return parsed;
    }
  }
}

/** The default after a type change: the old one if it reads as the new type, else an empty value of it. */
export function convertDefault(type: ParamType, text: string): Json {
  try {
    return parseDefault(type, text);
  } catch {
    const empty: Record<ParamType, Json> = { string: "", integer: 0, number: 0, boolean: false, array: [], object: {}, null: null };
    return empty[type];
  }
}

export function formatDefault(value: Json): string {
  if (value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}
