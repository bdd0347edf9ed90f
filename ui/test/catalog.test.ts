import { describe, expect, it } from "vitest";
import { catalogFilePath, groupCatalog, relativePath, stepFromCatalogFile } from "../src/logic/catalog";
import { addStep, emptyDocument } from "../src/logic/document";
import type { CatalogFile } from "../src/types";
import { stepTypes } from "./fixtures";

const train: CatalogFile = {
  path: "notebooks/train.ipynb",
  root: "/opt/airflow/dags",
  kind: "notebook",
  step_type: "notebook",
  parameters: [
    { name: "C", type: "float", default: 1.0, help: "" },
    { name: "train_path", type: "str", default: "data/train.csv", help: "" },
    { name: "model_path", type: "None", default: null, help: "" },
  ],
};

describe("catalog", () => {
  it("computes paths relative to the workflow file's folder", () => {
    expect(relativePath("/opt/airflow/dags/workflows", "/opt/airflow/dags/notebooks/train.ipynb")).toBe("../notebooks/train.ipynb");
    expect(relativePath("/a/b", "/a/b/c.R")).toBe("c.R");
    expect(relativePath("/x/y/", "/z/n.ipynb")).toBe("../../z/n.ipynb");
    expect(catalogFilePath(train, "/opt/airflow/dags/workflows")).toBe("../notebooks/train.ipynb");
    expect(catalogFilePath({ ...train, ref: "../../nb/train.ipynb" }, "/x")).toBe("../../nb/train.ipynb");
  });

  it("a dropped notebook becomes a step with its file and parameters pre-filled", () => {
    let doc = emptyDocument();
    const step = stepFromCatalogFile(train, stepTypes, doc, "/opt/airflow/dags/workflows");
    expect(step).toEqual({
      id: "train",
      type: "notebook",
      notebook: "../notebooks/train.ipynb",
      parameters: { C: 1.0, train_path: "data/train.csv", model_path: null },
    });
    doc = addStep(doc, step, { x: 1, y: 2 });
    expect(stepFromCatalogFile(train, stepTypes, doc, "/opt/airflow/dags/workflows").id).toBe("train_2");
  });

  it("pre-fills the outputs the file records, when the catalog knows them", () => {
    const step = stepFromCatalogFile({ ...train, outputs: ["accuracy", "model_path"] }, stepTypes, emptyDocument(), "/opt/airflow/dags/workflows");
    expect(step.outputs).toEqual(["accuracy", "model_path"]);
  });

  it("an R script fills the r step's `script`", () => {
    const r: CatalogFile = { path: "r/fit-mpg.R", root: "/d", kind: "r", step_type: "r", parameters: [] };
    expect(stepFromCatalogFile(r, stepTypes, emptyDocument(), "/d/workflows")).toEqual({ id: "fit-mpg", type: "r", script: "../r/fit-mpg.R" });
  });

  it("a file for a step type the provider lacks is a clear error", () => {
    const odd = { ...train, step_type: "julia" };
    expect(() => stepFromCatalogFile(odd, stepTypes, emptyDocument(), "/d")).toThrow(/no "julia" step type/);
  });

  it("groups and filters files by folder", () => {
    const files = [train, { ...train, path: "notebooks/prepare.ipynb" }, { ...train, path: "top.ipynb" }];
    expect(groupCatalog(files, "").map((g) => [g.folder, g.files.map((f) => f.path)])).toEqual([
      [".", ["top.ipynb"]],
      ["notebooks", ["notebooks/prepare.ipynb", "notebooks/train.ipynb"]],
    ]);
    expect(groupCatalog(files, "PREP").flatMap((g) => g.files.map((f) => f.path))).toEqual(["notebooks/prepare.ipynb"]);
  });
});
