import { describe, expect, it } from "vitest";
import { documentForSave, removeSteps, renameStep, setPositions, setStepParameter, uniqueStepId } from "../src/logic/document";
import { autoLayout, NODE_WIDTH } from "../src/logic/layout";
import { convertDefault, listParams, parseDefault, removeParam, renameParam, setParam } from "../src/logic/params";
import { quickstart } from "./fixtures";

describe("document edits", () => {
  it("renaming a step rewrites references, depends_on and layout", () => {
    const doc = renameStep(quickstart(), "train", "fit");
    expect(doc.steps[1]?.id).toBe("fit");
    expect(doc.steps[2]?.parameters?.model_path).toBe("${{ steps.fit.outputs.model_path }}");
    expect(doc.steps[2]?.parameters?.label).toBe("run ${{ params.n }} of ${{ steps.fit.outputs.accuracy }}");
    expect(doc.layout).toHaveProperty("fit");
    expect(doc.layout).not.toHaveProperty("train");
    const dep = renameStep(quickstart(), "evaluate", "eval");
    expect(dep.steps[3]?.depends_on).toEqual(["eval"]);
  });

  it("removing steps removes their edges and positions", () => {
    const doc = removeSteps(quickstart(), ["evaluate", "prepare"]);
    expect(doc.steps.map((s) => s.id)).toEqual(["train", "report"]);
    expect(doc.steps[0]?.parameters).toEqual({ C: "${{ params.C }}" });
    expect(doc.steps[1]?.depends_on).toBeUndefined();
    expect(Object.keys(doc.layout ?? {})).toEqual(["train", "report"]);
  });

  it("keeps parameter order when a value changes, and drops an emptied mapping", () => {
    let doc = setStepParameter(quickstart(), "prepare", "test_size", 0.3);
    expect(Object.keys(doc.steps[0]?.parameters ?? {})).toEqual(["test_size", "seed"]);
    doc = setStepParameter(setStepParameter(doc, "prepare", "test_size", undefined), "prepare", "seed", undefined);
    expect(doc.steps[0]).not.toHaveProperty("parameters");
  });

  it("positions are rounded and stale ones are not saved", () => {
    const doc = setPositions(quickstart(), { train: { x: 1.6, y: 2.2 }, gone: { x: 0, y: 0 } });
    expect(doc.layout?.train).toEqual({ x: 2, y: 2 });
    expect(documentForSave(doc).layout).not.toHaveProperty("gone");
    expect(uniqueStepId(doc, "train.ipynb")).toBe("train_2");
    expect(uniqueStepId(doc, "my notebook (1).ipynb")).toBe("my_notebook_1");
  });

  it("auto-layout puts steps left to right along their edges", () => {
    const pos = autoLayout(quickstart());
    expect(pos.prepare!.x + NODE_WIDTH).toBeLessThanOrEqual(pos.train!.x);
    expect(pos.train!.x + NODE_WIDTH).toBeLessThanOrEqual(pos.evaluate!.x);
    expect(pos.evaluate!.x + NODE_WIDTH).toBeLessThanOrEqual(pos.report!.x);
  });
});

describe("global parameters", () => {
  it("reads long form and shorthand alike", () => {
    expect(listParams(quickstart())).toEqual([
      { name: "C", type: "number", default: 1.0, description: "Inverse regularisation strength" },
      { name: "n", type: "integer", default: 3, description: "" },
    ]);
  });

  it("renames a parameter in place and in every reference", () => {
    const doc = renameParam(quickstart(), "C", "reg");
    expect(Object.keys(doc.params ?? {})).toEqual(["reg", "n"]);
    expect(doc.steps[1]?.parameters?.C).toBe("${{ params.reg }}");
  });

  it("writes the long form, keeping extra keys; removes the last one entirely", () => {
    let doc = setParam(quickstart(), { name: "n", type: "integer", default: 5, description: "folds" });
    expect(doc.params?.n).toEqual({ type: "integer", default: 5, description: "folds" });
    doc = removeParam(removeParam(doc, "n"), "C");
    expect(doc).not.toHaveProperty("params");
  });

  it("parses defaults by type with a clear message", () => {
    expect(parseDefault("number", "0.5")).toBe(0.5);
    expect(parseDefault("array", '["a"]')).toEqual(["a"]);
    expect(() => parseDefault("integer", "x")).toThrow("an integer");
    expect(() => parseDefault("object", "[]")).toThrow("a JSON object");
    expect(convertDefault("number", "0.5")).toBe(0.5);
    expect(convertDefault("number", "")).toBe(0);
    expect(convertDefault("boolean", "x")).toBe(false);
  });
});
