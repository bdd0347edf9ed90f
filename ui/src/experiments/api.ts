// The Experiments view's API client: one same-origin GET (the `_token` cookie authenticates it).
import { ApiError } from "../api";
import type { Experiments } from "./types";

export interface ExperimentsQuery {
  last: number;
  diff: boolean;
}

export function experimentsUrl(apiBase: string, dagId: string, taskId: string, query: ExperimentsQuery): string {
  const url = new URL(`experiments/${encodeURIComponent(dagId)}/${encodeURIComponent(taskId)}`, apiBase);
  url.searchParams.set("last", String(query.last));
  url.searchParams.set("diff", String(query.diff));
  return url.href;
}

export async function fetchExperiments(
  apiBase: string,
  dagId: string,
  taskId: string,
  query: ExperimentsQuery,
  fetchImpl: typeof fetch = (...args) => fetch(...args),
): Promise<Experiments> {
  let response: Response;
  try {
    response = await fetchImpl(experimentsUrl(apiBase, dagId, taskId, query), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch {
    throw new ApiError(0, null);
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body !== null && typeof body === "object" && "detail" in body ? (body as { detail: unknown }).detail : body;
    throw new ApiError(response.status, typeof detail === "string" ? detail : `HTTP ${response.status}`);
  }
  return body as Experiments;
}
