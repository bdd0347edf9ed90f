// Types of the designer's JSON API (/mlplatform/api, see docs/designer.md) and of the workflow
// document (format version 1, docs/workflows.md). Only what the UI reads is typed strictly.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A JSON Schema fragment, as much of it as the designer reads. */
export interface JsonSchema {
  type?: string | string[];
  const?: Json;
  enum?: Json[];
  default?: Json;
  description?: string;
  title?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  $ref?: string;
  additionalProperties?: boolean | JsonSchema;
  [key: string]: unknown;
}

export interface StepType {
  type: string;
  description: string;
  schema: JsonSchema;
  outputs_ports: boolean;
  file_kinds: string[];
}

export interface Palette {
  step_types: StepType[];
  document_schema: JsonSchema;
}

export interface Profile {
  name: string;
  backend: string;
  description?: string;
}

export interface CatalogParameter {
  name: string;
  type: string | null;
  default: Json;
  help?: string | null;
}

export interface CatalogFile {
  path: string;
  root: string;
  kind: "notebook" | "r" | "rmd" | string;
  step_type: string;
  parameters: CatalogParameter[];
  /** Values the file records (runtime `record("name", ...)`), when the server finds them. */
  outputs?: string[];
  /** The path as a workflow in the workflows folder writes it, when the server gives it. */
  ref?: string;
  mtime?: number;
}

export interface Catalog {
  roots: string[];
  files: CatalogFile[];
}

export interface WorkflowListEntry {
  path: string;
  dag_id: string | null;
  draft: boolean;
}

export interface WorkflowList {
  folder: string;
  writable: boolean;
  workflows: WorkflowListEntry[];
}

export interface Position {
  x: number;
  y: number;
}

/** One step of a workflow; the fields besides the common ones depend on its type. */
export interface Step {
  id: string;
  type: string;
  parameters?: JsonObject;
  outputs?: string | string[];
  depends_on?: string | string[];
  [field: string]: Json | undefined;
}

export interface ParamSpec {
  type?: string;
  default?: Json;
  description?: string;
  [field: string]: Json | undefined;
}

/** A workflow document: the JSON form of a workflow file. */
export interface WorkflowDocument {
  version: number;
  id: string;
  params?: Record<string, ParamSpec | Json>;
  steps: Step[];
  layout?: Record<string, Position>;
  [field: string]: unknown;
}

export interface OpenedWorkflow {
  path: string;
  document: WorkflowDocument;
  yaml: string;
  etag: string;
  writable: boolean;
}

export interface ValidationError {
  step: string | null;
  field: string | null;
  message: string;
  line?: number | null;
  column?: number | null;
}

export interface ValidationResult {
  valid: boolean;
  errors: ValidationError[];
}

export interface Preview {
  yaml: string;
  python: string;
}

export interface SaveResult {
  path: string;
  etag: string;
  dag_id: string;
}

export interface RunInfo {
  dag_id: string;
  dag_exists: boolean;
  grid_url: string;
  trigger_url: string;
}

export interface StepHint {
  values: Record<string, Json>;
  run_id: string;
  try: number;
}

export interface Hints {
  steps: Record<string, StepHint>;
}

export interface Me {
  user: string;
  can_edit: boolean;
}
