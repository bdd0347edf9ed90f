// References between steps, in the workflow format's one syntax:
//   ${{ steps.STEP.outputs.NAME }}   a value recorded by another step
//   ${{ params.NAME }}               a global parameter
// Pure functions: parse, format, find every reference in a value, rename a step's references.
import type { Json } from "../types";

export type Ref = { kind: "output"; step: string; output: string } | { kind: "param"; name: string };

const REF_RE = /\$\{\{\s*(steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_.-]+)|params\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}/g;
const EXACT_RE = new RegExp(`^\\s*${REF_RE.source}\\s*$`);

/** The reference text for a step output or a global parameter. */
export function formatRef(ref: Ref): string {
  return ref.kind === "output" ? `\${{ steps.${ref.step}.outputs.${ref.output} }}` : `\${{ params.${ref.name} }}`;
}

function toRef(match: RegExpMatchArray | RegExpExecArray): Ref {
  const [, , step, output, name] = match;
  return step !== undefined && output !== undefined
    ? { kind: "output", step, output }
    : { kind: "param", name: name ?? "" };
}

/** The reference a value is exactly (it then arrives with its type), or null. */
export function parseExactRef(value: Json | undefined): Ref | null {
  if (typeof value !== "string") return null;
  const match = EXACT_RE.exec(value);
  return match ? toRef(match) : null;
}

/** Every reference inside a value (strings, lists and mappings, at any depth). */
export function findRefs(value: Json | undefined): Ref[] {
  if (typeof value === "string") return Array.from(value.matchAll(REF_RE), toRef);
  if (Array.isArray(value)) return value.flatMap(findRefs);
  if (value !== null && typeof value === "object") return Object.values(value).flatMap(findRefs);
  return [];
}

/** The same value with references to step `from` pointing at step `to`. */
export function renameStepInValue(value: Json, from: string, to: string): Json {
  if (typeof value === "string") {
    return value.replace(REF_RE, (text, _all, step: string | undefined, output: string | undefined) =>
      step === from && output !== undefined ? formatRef({ kind: "output", step: to, output }) : text,
    );
  }
  if (Array.isArray(value)) return value.map((item) => renameStepInValue(item, from, to));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renameStepInValue(v, from, to)]));
  }
  return value;
}

/** The same value with references to global parameter `from` renamed to `to`. */
export function renameParamInValue(value: Json, from: string, to: string): Json {
  if (typeof value === "string") {
    return value.replace(REF_RE, (text, _all, _step, _output, name: string | undefined) =>
      name === from ? formatRef({ kind: "param", name: to }) : text,
    );
  }
  if (Array.isArray(value)) return value.map((item) => renameParamInValue(item, from, to));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renameParamInValue(v, from, to)]));
  }
  return value;
}

export function refsEqual(a: Ref, b: Ref): boolean {
  return a.kind === "output" && b.kind === "output"
    ? a.step === b.step && a.output === b.output
    : a.kind === "param" && b.kind === "param" && a.name === b.name;
}
