import { describe, expect, it } from "vitest";
import {
  commonFieldNames,
  fieldKind,
  fieldsForStepType,
  formatFieldValue,
  newStepDefaults,
  parseFieldInput,
  type FieldSpec,
} from "../src/logic/schemaForm";
import type { StepType } from "../src/types";
import { documentSchema, stepTypes } from "./fixtures";

const byType = (type: string): StepType => stepTypes.find((t) => t.type === type)!;
const field = (fields: FieldSpec[], name: string): FieldSpec => fields.find((f) => f.name === name)!;

describe("schema -> form fields", () => {
  const common = commonFieldNames(stepTypes);

  it("finds the fields every step type has", () => {
    expect([...common]).toEqual(expect.arrayContaining(["id", "type", "description", "outputs", "retries", "timeout"]));
    expect(common.has("notebook")).toBe(false);
  });

  it("makes a notebook step's form: required file first, kinds from the schema, common fields last", () => {
    const fields = fieldsForStepType(byType("notebook"), common, documentSchema);
    expect(fields[0]).toMatchObject({ name: "notebook", kind: "string", required: true, description: "the .ipynb file" });
    expect(fields.map((f) => f.name)).not.toContain("parameters");
    expect(fields.map((f) => f.name)).not.toContain("id");
    expect(field(fields, "include_dag_params").kind).toBe("boolean");
    expect(field(fields, "cell_timeout").kind).toBe("number");
    expect(field(fields, "compute").kind).toBe("profile");
    expect(field(fields, "timeout").kind).toBe("duration");
    expect(field(fields, "outputs")).toMatchObject({ kind: "stringOrList", common: false });
    expect(field(fields, "retries")).toMatchObject({ kind: "integer", common: true });
    expect(field(fields, "env").kind).toBe("json");
    const firstCommon = fields.findIndex((f) => f.common);
    expect(fields.slice(firstCommon).every((f) => f.common)).toBe(true);
  });

  it("turns enums into choices (tfjob's backend)", () => {
    const tf = fieldsForStepType(byType("tfjob"), common, documentSchema);
    const backend = field(tf, "backend");
    expect(backend.kind).toBe("enum");
    expect(backend.options).toEqual(expect.arrayContaining(["kubeflow", "local"]));
  });

  it("a step type it has never seen gets a form from its schema alone", () => {
    const custom: StepType = {
      type: "sql",
      description: "a query",
      outputs_ports: true,
      file_kinds: [],
      schema: {
        type: "object",
        required: ["id", "type", "query"],
        properties: {
          id: { type: "string" },
          type: { const: "sql" },
          query: { type: "string", description: "the SQL" },
          engine: { enum: ["duckdb", "postgres"], default: "duckdb" },
          limit: { type: "integer", default: 100 },
          dry: { $ref: "#/$defs/flag" },
        },
        $defs: {},
      },
    };
    const root = { $defs: { flag: { type: "boolean", description: "only plan" } } };
    const fields = fieldsForStepType(custom, new Set(), root);
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["query", "string", true],
      ["engine", "enum", false],
      ["limit", "integer", false],
      ["dry", "boolean", false],
    ]);
    expect(field(fields, "limit").default).toBe(100);
    expect(field(fields, "dry").description).toBe("only plan");
  });

  it("parses typed input by kind; empty removes the key; references are kept as text", () => {
    const fields = fieldsForStepType(byType("notebook"), common, documentSchema);
    expect(parseFieldInput(field(fields, "retries"), "3")).toEqual({ ok: true, value: 3 });
    expect(parseFieldInput(field(fields, "retries"), "3.5")).toMatchObject({ ok: false });
    expect(parseFieldInput(field(fields, "retries"), "")).toEqual({ ok: true, value: undefined });
    expect(parseFieldInput(field(fields, "timeout"), "10m")).toEqual({ ok: true, value: "10m" });
    expect(parseFieldInput(field(fields, "timeout"), "600")).toEqual({ ok: true, value: 600 });
    expect(parseFieldInput(field(fields, "outputs"), "a, b")).toEqual({ ok: true, value: ["a", "b"] });
    expect(parseFieldInput(field(fields, "outputs"), "a")).toEqual({ ok: true, value: ["a"] });
    expect(parseFieldInput(field(fields, "env"), '{"A": "1"}')).toEqual({ ok: true, value: { A: "1" } });
    expect(parseFieldInput(field(fields, "notebook"), "${{ params.nb }}")).toEqual({ ok: true, value: "${{ params.nb }}" });
    expect(parseFieldInput(field(fields, "compute"), "gpu", { profile: "cpu", image: "x" })).toEqual({
      ok: true,
      value: { profile: "gpu", image: "x" },
    });
    expect(formatFieldValue(field(fields, "compute"), { profile: "cpu", image: "x" })).toBe("cpu");
    expect(formatFieldValue(field(fields, "outputs"), ["a", "b"])).toBe("a, b");
  });

  it("the document's own form keeps its id and skips what has its own editor", () => {
    const doc: StepType = { type: "document", description: "", outputs_ports: false, file_kinds: [], schema: documentSchema };
    const names = fieldsForStepType(doc, new Set(), documentSchema, new Set(["version", "steps", "params", "layout"])).map((f) => f.name);
    expect(names[0]).toBe("id");
    expect(names).toEqual(expect.arrayContaining(["description", "schedule", "start_date", "tags"]));
    expect(names).not.toContain("steps");
  });

  it("new steps get their required fields' defaults", () => {
    expect(newStepDefaults(byType("notebook"), documentSchema)).toEqual({});
    expect(fieldKind("x", { type: ["string", "null"] })).toBe("string");
  });
});
