// The catalog of notebooks and scripts -> the step a dropped file creates.
import type { CatalogFile, Json, Step, StepType, WorkflowDocument } from "../types";
import { uniqueStepId } from "./document";

/** The step field that holds the file for a step type (`notebook`, `script`), from its schema. */
export function fileField(stepType: StepType): string | null {
  const props = stepType.schema.properties ?? {};
  for (const name of ["notebook", "script"]) if (name in props) return name;
  return null;
}

function parts(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/** `to` relative to the folder `fromDir` (POSIX paths, both absolute or both relative to one root). */
export function relativePath(fromDir: string, to: string): string {
  const from = parts(fromDir);
  const target = parts(to);
  let common = 0;
  while (common < from.length && common < target.length && from[common] === target[common]) common += 1;
  const up = from.slice(common).map(() => "..");
  return [...up, ...target.slice(common)].join("/") || ".";
}

export function joinPath(root: string, path: string): string {
  return `${root.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/** The file's path as a workflow in `workflowsFolder` writes it (relative to the workflow file). */
export function catalogFilePath(file: CatalogFile, workflowsFolder: string): string {
  return file.ref ?? relativePath(workflowsFolder, joinPath(file.root, file.path));
}

/** A new step for a dropped catalog file: the file set and its own parameters pre-filled with their defaults. */
export function stepFromCatalogFile(
  file: CatalogFile,
  stepTypes: StepType[],
  doc: WorkflowDocument,
  workflowsFolder: string,
): Step {
  const stepType = stepTypes.find((t) => t.type === file.step_type);
  if (!stepType) throw new Error(`this provider has no "${file.step_type}" step type for ${file.path}`);
  const field = fileField(stepType);
  if (!field) throw new Error(`the "${file.step_type}" step type takes no file`);
  const name = file.path.split("/").pop() ?? file.path;
  const step: Step = { id: uniqueStepId(doc, name), type: stepType.type, [field]: catalogFilePath(file, workflowsFolder) };
  const parameters: Record<string, Json> = {};
  for (const param of file.parameters) parameters[param.name] = param.default ?? null;
  if (file.parameters.length > 0) step.parameters = parameters;
  if (file.outputs && file.outputs.length > 0) step.outputs = [...file.outputs];
  return step;
}

export interface CatalogGroup {
  folder: string;
  files: CatalogFile[];
}

/** Files matching a search, grouped by folder (root and sub-folder), folders sorted. */
export function groupCatalog(files: CatalogFile[], search: string): CatalogGroup[] {
  const needle = search.trim().toLowerCase();
  const groups = new Map<string, CatalogFile[]>();
  for (const file of files) {
    if (needle && !file.path.toLowerCase().includes(needle)) continue;
    const slash = file.path.lastIndexOf("/");
    const folder = slash < 0 ? "." : file.path.slice(0, slash);
    const list = groups.get(folder) ?? [];
    list.push(file);
    groups.set(folder, list);
  }
  return Array.from(groups, ([folder, list]) => ({ folder, files: list.sort((a, b) => a.path.localeCompare(b.path)) })).sort(
    (a, b) => a.folder.localeCompare(b.folder),
  );
}
