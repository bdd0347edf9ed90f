// What GET /mlplatform/api/experiments/{dag}/{task} answers (airflow_mlplatform.runs_compare).
export type Cell = string | number | boolean | null | Cell[] | { [key: string]: Cell };
export type Point = [number, number];

export interface ExperimentRow {
  run_id: string;
  try_number: number;
  map_index: number;
  cells: Cell[];
  parameters: Record<string, Cell>;
  final: Record<string, Cell>;
  series: Record<string, Point[]>;
  output_url: string;
}

export interface Experiments {
  dag_id: string;
  task_id: string;
  columns: string[];
  parameters: string[];
  metrics: string[];
  rows: ExperimentRow[];
}
