import { describe, expect, it } from "vitest";
import { depEdge, documentToGraph, graphToDocument, PARAMS_NODE, type GraphEdge } from "../src/logic/graph";
import { quickstart } from "./fixtures";

describe("document <-> graph", () => {
  it("draws references, parameter references and depends_on as edges", () => {
    const graph = documentToGraph(quickstart());
    expect(graph.nodes.map((n) => n.id)).toEqual([PARAMS_NODE, "prepare", "train", "evaluate", "report"]);
    const edges = graph.edges.map((e) => `${e.source}.${e.sourceHandle ?? "-"} -> ${e.target}.${e.targetHandle ?? "-"}`);
    expect(edges).toEqual([
      "$params.param:C -> train.in:C",
      "prepare.out:train_path -> train.in:train_path",
      "train.out:model_path -> evaluate.in:model_path",
      "prepare.out:test_path -> evaluate.in:test_path",
      "$params.param:n -> evaluate.in:label",
      "train.out:accuracy -> evaluate.in:label",
      "evaluate.- -> report.-",
    ]);
    const train = graph.nodes.find((n) => n.id === "train");
    expect(train?.position).toEqual({ x: 300, y: 0 });
    expect(train?.data).toMatchObject({ inputs: ["C", "train_path"], outputs: ["accuracy", "model_path"] });
  });

  it("round-trips: graph -> document gives the same document", () => {
    const doc = quickstart();
    expect(graphToDocument(doc, documentToGraph(doc))).toEqual(doc);
  });

  it("round-trips a document without layout, adding one", () => {
    const doc = quickstart();
    delete doc.layout;
    const back = graphToDocument(doc, documentToGraph(doc));
    expect(back.steps).toEqual(doc.steps);
    expect(Object.keys(back.layout ?? {})).toEqual(["prepare", "train", "evaluate", "report"]);
  });

  it("graph edits come back as document edits", () => {
    const doc = quickstart();
    const graph = documentToGraph(doc);
    const edges: GraphEdge[] = graph.edges.filter((e) => !(e.source === "train" && e.targetHandle === "in:model_path"));
    edges.push(depEdge("prepare", "report"));
    const nodes = graph.nodes.map((n) => (n.id === "prepare" ? { ...n, position: { x: 10.4, y: 20.6 } } : n));
    const back = graphToDocument(doc, { nodes, edges });
    expect(back.steps[2]?.parameters).not.toHaveProperty("model_path");
    expect(back.steps[2]?.parameters?.label).toBe("run ${{ params.n }} of ${{ steps.train.outputs.accuracy }}");
    expect(back.steps[3]?.depends_on).toEqual(["evaluate", "prepare"]);
    expect(back.layout?.prepare).toEqual({ x: 10, y: 21 });
  });

  it("ignores references to unknown steps (the validator reports them)", () => {
    const doc = quickstart();
    doc.steps[0] = { ...doc.steps[0]!, parameters: { x: "${{ steps.nope.outputs.y }}" }, depends_on: "ghost" };
    const graph = documentToGraph(doc);
    expect(graph.edges.some((e) => e.source === "nope" || e.source === "ghost")).toBe(false);
  });

  it("has no parameters node when there are no global parameters", () => {
    const doc = quickstart();
    delete doc.params;
    doc.steps = doc.steps.map((s) => ({ ...s, parameters: {} }));
    expect(documentToGraph(doc).nodes.some((n) => n.id === PARAMS_NODE)).toBe(false);
  });
});
