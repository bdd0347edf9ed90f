// A step type's JSON Schema -> the fields of its properties panel. Nothing here knows a step type:
// a new step type in the provider's registry gets its form from its schema alone.
import type { Json, JsonSchema, StepType } from "../types";

export type FieldKind = "string" | "integer" | "number" | "boolean" | "enum" | "profile" | "duration" | "stringOrList" | "json";

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  description: string;
  default: Json | undefined;
  options: Json[];
  /** Found in every step type's schema: shown under "Common". */
  common: boolean;
}

/** Common to every step type, yet shown with the type's own fields: they shape the graph. */
export const PROMINENT_FIELDS = new Set(["outputs"]);

/** Fields with their own editors (header, parameters table, edges), not generic form rows. */
export const SPECIAL_FIELDS = new Set(["id", "type", "parameters", "depends_on"]);

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  return schema.type ? [schema.type] : [];
}

/** Follows a local `$ref` (`#/$defs/x`) against the document schema. */
export function resolveSchema(schema: JsonSchema, root: JsonSchema | undefined): JsonSchema {
  let current = schema;
  for (let depth = 0; current.$ref && root && depth < 10; depth += 1) {
    const path = current.$ref.replace(/^#\//, "").split("/");
    let target: unknown = root;
    for (const part of path) target = (target as Record<string, unknown> | undefined)?.[part];
    if (!target || typeof target !== "object") break;
    current = { ...(target as JsonSchema), ...(current.description ? { description: current.description } : {}) };
  }
  return current;
}

export function fieldKind(name: string, schema: JsonSchema): FieldKind {
  if (name === "compute") return "profile";
  if (schema.enum) return "enum";
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const kinds = variants.map((v) => typesOf(v)).flat();
    if (kinds.includes("number") && kinds.includes("string") && variants.some((v) => v.pattern)) return "duration";
    if (kinds.includes("string") && kinds.includes("array")) return "stringOrList";
    return "json";
  }
  const types = typesOf(schema).filter((t) => t !== "null");
  if (types.length === 1) {
    const [type] = types;
    if (type === "string" || type === "integer" || type === "number" || type === "boolean") return type;
    if (type === "array" && schema.items && typesOf(schema.items).includes("string")) return "stringOrList";
  }
  return "json";
}

function humanize(name: string): string {
  const text = name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The names of the properties every step type has (id, outputs, retries...). */
export function commonFieldNames(stepTypes: StepType[]): Set<string> {
  const [first, ...rest] = stepTypes.map((t) => Object.keys(t.schema.properties ?? {}));
  if (!first) return new Set();
  return new Set(first.filter((name) => rest.every((names) => names.includes(name))));
}

/** The form rows of one step type: its own required fields, its own optional ones, then the common ones. */
export function fieldsForStepType(stepType: StepType, common: Set<string>, root?: JsonSchema, skip: Set<string> = SPECIAL_FIELDS): FieldSpec[] {
  const schema = resolveSchema(stepType.schema, root);
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {})
    .filter(([name]) => !skip.has(name))
    .map(([name, raw]): FieldSpec => {
      const prop = resolveSchema(raw, root);
      const options = prop.enum ?? [];
      return {
        name,
        label: prop.title ?? humanize(name),
        kind: fieldKind(name, prop),
        required: required.has(name),
        description: prop.description ?? "",
        default: prop.default,
        options,
        common: common.has(name) && !required.has(name) && !PROMINENT_FIELDS.has(name),
      };
    });
  const rank = (f: FieldSpec): number => (f.required ? 0 : f.common ? 2 : 1);
  return fields.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
}

/** The text a field's input shows for a value. */
export function formatFieldValue(field: FieldSpec, value: Json | undefined): string {
  if (value === undefined || value === null) return "";
  if (field.kind === "profile" && typeof value === "object" && !Array.isArray(value)) {
    return String((value as Record<string, Json>).profile ?? "");
  }
  if (field.kind === "stringOrList") return Array.isArray(value) ? value.map(String).join(", ") : String(value);
  if (typeof value === "string") return value;
  if (field.kind === "json") return JSON.stringify(value);
  return String(value);
}

export type ParsedField = { ok: true; value: Json | undefined } | { ok: false; message: string };

/**
 * Parses what was typed into a field; empty means "not set" (the key is removed). A `${{ ... }}`
 * reference is kept as text in any field (the validator says where it is not allowed).
 */
export function parseFieldInput(field: FieldSpec, text: string, previous?: Json): ParsedField {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, value: undefined };
  if (trimmed.startsWith("${{")) return { ok: true, value: trimmed };
  switch (field.kind) {
    case "integer": {
      const n = Number(trimmed);
      return Number.isInteger(n) ? { ok: true, value: n } : { ok: false, message: "a whole number" };
    }
    case "number": {
      const n = Number(trimmed);
      return Number.isNaN(n) ? { ok: false, message: "a number" } : { ok: true, value: n };
    }
    case "duration": {
      const n = Number(trimmed);
      return { ok: true, value: Number.isNaN(n) ? trimmed : n };
    }
    case "boolean":
      return trimmed === "true" || trimmed === "false" ? { ok: true, value: trimmed === "true" } : { ok: false, message: "true or false" };
    case "enum": {
      const match = field.options.find((option) => String(option) === trimmed);
      return match === undefined ? { ok: false, message: `one of ${field.options.join(", ")}` } : { ok: true, value: match };
    }
    case "profile":
      if (previous !== null && typeof previous === "object" && !Array.isArray(previous)) {
        return { ok: true, value: { ...previous, profile: trimmed } };
      }
      return { ok: true, value: trimmed };
    case "stringOrList": {
      const items = trimmed.split(",").map((item) => item.trim()).filter(Boolean);
      const wasString = typeof previous === "string" || previous === undefined;
      return { ok: true, value: items.length === 1 && wasString && field.name !== "outputs" ? items[0] : items };
    }
    case "json":
      try {
        return { ok: true, value: JSON.parse(trimmed) as Json };
      } catch {
        return { ok: true, value: trimmed };
      }
    default:
      return { ok: true, value: text };
  }
}

/** The step a palette entry creates: its type, an id, and its required fields' defaults. */
export function newStepDefaults(stepType: StepType, root?: JsonSchema): Record<string, Json> {
  const schema = resolveSchema(stepType.schema, root);
  const values: Record<string, Json> = {};
  for (const name of schema.required ?? []) {
    const prop = schema.properties?.[name];
    if (name === "id" || name === "type" || !prop) continue;
    const resolved = resolveSchema(prop, root);
    if (resolved.default !== undefined) values[name] = resolved.default;
  }
  return values;
}
