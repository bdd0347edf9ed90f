import { describe, expect, it } from "vitest";
import { documentToGraph, inHandle, NEW_INPUT, outHandle, PARAMS_NODE, paramHandle } from "../src/logic/graph";
import { connect, createsCycle, disconnect } from "../src/logic/wiring";
import type { WorkflowDocument } from "../src/types";
import { quickstart } from "./fixtures";

function twoNotebooks(): WorkflowDocument {
  return {
    version: 1,
    id: "wf",
    params: { C: { type: "number", default: 1 } },
    steps: [
      { id: "train", type: "notebook", notebook: "train.ipynb", parameters: { C: 1.0 }, outputs: ["model_path"] },
      { id: "evaluate", type: "notebook", notebook: "evaluate.ipynb", parameters: { model_path: "", test_path: "x" } },
    ],
  };
}

function ok(result: ReturnType<typeof connect>): WorkflowDocument {
  if (!result.ok) throw new Error(result.reason);
  return result.doc;
}

describe("wiring", () => {
  it("dragging train.model_path onto evaluate's model_path writes the reference", () => {
    const doc = ok(connect(twoNotebooks(), { source: "train", sourceHandle: outHandle("model_path"), target: "evaluate", targetHandle: inHandle("model_path") }));
    expect(doc.steps[1]?.parameters).toEqual({ model_path: "${{ steps.train.outputs.model_path }}", test_path: "x" });
    expect(doc.steps[1]?.depends_on).toBeUndefined();
  });

  it("a global parameter is wired the same way", () => {
    const doc = ok(connect(twoNotebooks(), { source: PARAMS_NODE, sourceHandle: paramHandle("C"), target: "train", targetHandle: inHandle("C") }));
    expect(doc.steps[0]?.parameters).toEqual({ C: "${{ params.C }}" });
  });

  it("dropping on the new-input port creates a parameter named after the output", () => {
    const result = connect(twoNotebooks(), { source: "train", sourceHandle: outHandle("model_path"), target: "evaluate", targetHandle: inHandle(NEW_INPUT) });
    expect(result).toMatchObject({ ok: true, param: "model_path" });
  });

  it("an edge without a value is a plain depends_on, added once", () => {
    let doc = ok(connect(twoNotebooks(), { source: "train", target: "evaluate" }));
    doc = ok(connect(doc, { source: "train", target: "evaluate" }));
    expect(doc.steps[1]?.depends_on).toEqual(["train"]);
  });

  it("refuses self edges and cycles", () => {
    const doc = ok(connect(twoNotebooks(), { source: "train", target: "evaluate" }));
    expect(connect(doc, { source: "evaluate", target: "evaluate" })).toMatchObject({ ok: false });
    expect(createsCycle(doc, "evaluate", "train")).toBe(true);
    expect(connect(doc, { source: "evaluate", target: "train" })).toMatchObject({ ok: false, reason: expect.stringContaining("cycle") });
  });

  it("removing a reference edge removes the parameter; removing a dependency edge the depends_on entry", () => {
    const doc = quickstart();
    const edges = documentToGraph(doc).edges;
    const modelPath = edges.find((e) => e.target === "evaluate" && e.targetHandle === inHandle("model_path"));
    const dep = edges.find((e) => e.data.kind === "dep");
    const label = edges.find((e) => e.target === "evaluate" && e.source === PARAMS_NODE);
    let next = disconnect(doc, modelPath!);
    expect(next.steps[2]?.parameters).not.toHaveProperty("model_path");
    next = disconnect(next, dep!);
    expect(next.steps[3]?.depends_on).toBeUndefined();
    next = disconnect(next, label!);
    expect(next.steps[2]?.parameters?.label).toBe("run  of ${{ steps.train.outputs.accuracy }}");
  });
});
