// Test data: the provider's real JSON Schema (the one the API serves in the palette) and the
// quickstart workflow as the API returns it.
import schemaJson from "../../src/airflow_mlplatform/workflow/schema/workflow-v1.schema.json";
import type { JsonSchema, StepType, WorkflowDocument } from "../src/types";

export const documentSchema = schemaJson as unknown as JsonSchema;

const defs = (documentSchema.$defs ?? {}) as Record<string, JsonSchema>;

/** The palette's step types, built from the schema's `step_*` definitions as the server does. */
export const stepTypes: StepType[] = Object.entries(defs)
  .filter(([name]) => name.startsWith("step_"))
  .map(([name, schema]) => ({
    type: name.slice("step_".length),
    description: schema.description ?? "",
    schema,
    outputs_ports: true,
    file_kinds: name === "step_notebook" ? ["ipynb"] : name === "step_r" ? ["R", "Rmd"] : [],
  }));

export function quickstart(): WorkflowDocument {
  return {
    version: 1,
    id: "quickstart_ml_pipeline_workflow",
    schedule: null,
    params: { C: { type: "number", default: 1.0, description: "Inverse regularisation strength" }, n: 3 },
    groups: { modelling: { tooltip: "Train and evaluate the model" } },
    steps: [
      {
        id: "prepare",
        type: "notebook",
        notebook: "../notebooks/prepare.ipynb",
        parameters: { test_size: 0.25, seed: 42 },
        outputs: ["train_path", "test_path", "n_features"],
      },
      {
        id: "train",
        type: "notebook",
        group: "modelling",
        notebook: "../notebooks/train.ipynb",
        parameters: { C: "${{ params.C }}", train_path: "${{ steps.prepare.outputs.train_path }}" },
        outputs: ["accuracy", "model_path"],
        retries: 1,
        timeout: "10m",
      },
      {
        id: "evaluate",
        type: "notebook",
        group: "modelling",
        notebook: "../notebooks/evaluate.ipynb",
        include_dag_params: false,
        parameters: {
          model_path: "${{ steps.train.outputs.model_path }}",
          test_path: "${{ steps.prepare.outputs.test_path }}",
          label: "run ${{ params.n }} of ${{ steps.train.outputs.accuracy }}",
        },
        outputs: ["test_accuracy"],
      },
      { id: "report", type: "bash", command: "echo done", depends_on: ["evaluate"] },
    ],
    layout: { prepare: { x: 0, y: 0 }, train: { x: 300, y: 0 }, evaluate: { x: 600, y: 0 }, report: { x: 900, y: 0 } },
  };
}
