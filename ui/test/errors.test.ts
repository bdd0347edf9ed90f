import { describe, expect, it } from "vitest";
import { fieldErrors, mapErrors, paramErrors } from "../src/logic/errors";
import { quickstart } from "./fixtures";

describe("validation errors -> nodes and fields", () => {
  const doc = quickstart();
  const map = mapErrors(
    [
      { step: "train", field: "notebook", message: "missing file ../notebooks/tran.ipynb", line: 31, column: 15 },
      { step: "evaluate", field: "parameters.model_path", message: "unknown output steps.train.outputs.model" },
      { step: "evaluate", field: null, message: "dependency cycle: evaluate -> train -> evaluate" },
      { step: null, field: "steps[0].compute", message: "unknown compute profile gpu-huge" },
      { step: null, field: "steps.3.command", message: "command is required" },
      { step: null, field: "params.C.default", message: "default of C must be a number" },
      { step: "ghost", field: "notebook", message: "a step that is gone" },
      { step: null, field: null, message: "line 1: bad YAML" },
    ],
    doc,
  );

  it("puts step errors on their node and field", () => {
    expect(map.steps.train?.messages).toEqual(["missing file ../notebooks/tran.ipynb"]);
    expect(fieldErrors(map, "train", "notebook")).toEqual(["missing file ../notebooks/tran.ipynb"]);
    expect(fieldErrors(map, "evaluate", "parameters")).toEqual(["unknown output steps.train.outputs.model"]);
    expect(fieldErrors(map, "evaluate", "parameters.model_path")).toHaveLength(1);
    expect(map.steps.evaluate?.messages).toHaveLength(2);
  });

  it("maps steps[i] / steps.i paths to the step with that index", () => {
    expect(fieldErrors(map, "prepare", "compute")).toEqual(["unknown compute profile gpu-huge"]);
    expect(fieldErrors(map, "report", "command")).toEqual(["command is required"]);
  });

  it("keeps document errors, and those of unknown steps, at the document", () => {
    expect(map.document.map((e) => e.message)).toEqual(["default of C must be a number", "a step that is gone", "line 1: bad YAML"]);
    expect(paramErrors(map, "C")).toEqual(["default of C must be a number"]);
    expect(paramErrors(map, "n")).toEqual([]);
    expect(map.count).toBe(8);
  });
});
