import { describe, expect, it } from "vitest";
import { ApiError, apiBase, createApi } from "../src/api";

describe("API client", () => {
  it("finds the API from Airflow's page (base href) and from the iframe page", () => {
    expect(apiBase({ href: "http://h/plugin/workflow-designer", pathname: "/plugin/workflow-designer" }, "http://h/")).toBe("http://h/mlplatform/api/");
    expect(apiBase({ href: "http://h/af/plugin/x", pathname: "/af/plugin/x" }, "http://h/af/")).toBe("http://h/af/mlplatform/api/");
    expect(apiBase({ href: "http://h/af/mlplatform/designer/", pathname: "/af/mlplatform/designer/" }, "http://h/af/mlplatform/designer/")).toBe(
      "http://h/af/mlplatform/api/",
    );
  });

  it("sends If-Match on save, JSON bodies, and turns error details into ApiError", async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fake = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      if (init.method === "PUT") return new Response(JSON.stringify({ detail: "changed by someone else" }), { status: 409 });
      return new Response(JSON.stringify({ valid: false, errors: [] }), { status: 200 });
    }) as unknown as typeof fetch;
    const api = createApi("http://h/mlplatform/api/", fake);
    await api.validate({ version: 1, id: "x", steps: [] }, "sub/wf.yaml");
    expect(JSON.parse(String(calls[0]?.init.body))).toEqual({ document: { version: 1, id: "x", steps: [] }, path: "sub/wf.yaml" });
    expect(calls[0]?.url).toBe("http://h/mlplatform/api/designer/validate");
    expect((calls[0]?.init.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
    const failure = await api.save("sub/my wf.yaml", { version: 1, id: "x", steps: [] }, { etag: '"abc"', draft: false }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(409);
    expect((failure as ApiError).message).toBe("changed by someone else");
    expect(calls[1]?.url).toBe("http://h/mlplatform/api/designer/workflows/sub/my%20wf.yaml");
    expect((calls[1]?.init.headers as Record<string, string>)["If-Match"]).toBe('"abc"');
    expect(JSON.parse(String(calls[1]?.init.body))).toEqual({ document: { version: 1, id: "x", steps: [] }, draft: false });
  });
});
