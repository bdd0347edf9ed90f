// The designer's JSON API client (/mlplatform/api). Same-origin requests: the api-server's auth
// manager reads the `_token` cookie Airflow's UI login set, so the designer needs no token of its own.
import type {
  Catalog,
  Hints,
  Me,
  OpenedWorkflow,
  Palette,
  Preview,
  Profile,
  RunInfo,
  SaveResult,
  ValidationError,
  ValidationResult,
  WorkflowDocument,
  WorkflowList,
} from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly detail: unknown;

  constructor(status: number, detail: unknown) {
    super(typeof detail === "string" ? detail : status === 0 ? "the server cannot be reached" : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** The validation errors a 422 on save carries, if any. */
  get validationErrors(): ValidationError[] {
    const detail = this.detail as { errors?: ValidationError[] } | ValidationError[] | null;
    if (Array.isArray(detail)) return detail.filter((e) => typeof e?.message === "string");
    return Array.isArray(detail?.errors) ? detail.errors : [];
  }
}

/**
 * Where the API is. In Airflow's page (react_apps) the document's base is `[api] base_url`; the
 * iframe page is served at `<base>/mlplatform/designer/`, so its API is next to it.
 */
export function apiBase(location: { href: string; pathname: string }, baseURI: string): string {
  const marker = location.pathname.indexOf("/mlplatform/designer");
  if (marker >= 0) return new URL(`${location.pathname.slice(0, marker)}/mlplatform/api/`, location.href).href;
  return new URL("mlplatform/api/", baseURI).href;
}

export interface Api {
  me(): Promise<Me>;
  palette(): Promise<Palette>;
  profiles(): Promise<Profile[]>;
  catalog(): Promise<Catalog>;
  workflows(): Promise<WorkflowList>;
  open(path: string): Promise<OpenedWorkflow>;
  validate(document: WorkflowDocument, path: string | null, signal?: AbortSignal): Promise<ValidationResult>;
  preview(document: WorkflowDocument, path: string | null, signal?: AbortSignal): Promise<Preview>;
  save(path: string, document: WorkflowDocument, options: { etag: string | null; draft: boolean }): Promise<SaveResult>;
  runInfo(path: string): Promise<RunInfo>;
  hints(dagId: string): Promise<Hints>;
}

const encodePath = (path: string): string => path.split("/").map(encodeURIComponent).join("/");

export function createApi(base: string, fetchImpl: typeof fetch = (...args) => fetch(...args)): Api {
  async function request<T>(path: string, init: RequestInit = {}): Promise<{ body: T; headers: Headers }> {
    let response: Response;
    try {
      response = await fetchImpl(new URL(path, base).href, {
        credentials: "same-origin",
        ...init,
        headers: { Accept: "application/json", ...(init.body ? { "Content-Type": "application/json" } : {}), ...init.headers },
      });
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      throw new ApiError(0, null);
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = text;
    }
    if (!response.ok) {
      const detail = body !== null && typeof body === "object" && "detail" in body ? (body as { detail: unknown }).detail : body;
      throw new ApiError(response.status, detail);
    }
    return { body: body as T, headers: response.headers };
  }
  const get = async <T>(path: string): Promise<T> => (await request<T>(path)).body;
  const post = async <T>(path: string, payload: unknown, signal?: AbortSignal): Promise<T> =>
    (await request<T>(path, { method: "POST", body: JSON.stringify(payload), ...(signal ? { signal } : {}) })).body;

  return {
    me: () => get<Me>("me"),
    palette: () => get<Palette>("designer/palette"),
    profiles: async () => (await get<{ profiles: Profile[] }>("designer/profiles")).profiles,
    catalog: () => get<Catalog>("designer/catalog"),
    workflows: () => get<WorkflowList>("designer/workflows"),
    open: async (path) => {
      const { body, headers } = await request<OpenedWorkflow>(`designer/workflows/${encodePath(path)}`);
      return { ...body, etag: body.etag ?? headers.get("ETag") ?? "" };
    },
    validate: (document, path, signal) => post<ValidationResult>("designer/validate", path ? { document, path } : { document }, signal),
    preview: (document, path, signal) => post<Preview>("designer/preview", path ? { document, path } : { document }, signal),
    save: async (path, document, { etag, draft }) =>
      (
        await request<SaveResult>(`designer/workflows/${encodePath(path)}`, {
          method: "PUT",
          body: JSON.stringify({ document, draft }),
          headers: etag ? { "If-Match": etag } : {},
        })
      ).body,
    runInfo: (path) => get<RunInfo>(`designer/workflows/${encodePath(path)}/run-info`),
    hints: (dagId) => get<Hints>(`designer/hints?dag_id=${encodeURIComponent(dagId)}`),
  };
}
