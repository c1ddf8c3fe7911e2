// The OpenAPI document is exact by construction for every route registered now or later
// (src/http/openapi-document.ts, src/http/allowed-methods.ts): a matrix over the document's own
// routes, and the rules it states checked against the definitions the code uses.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  API_REF_PATTERN,
  BRANCH_GLOB_PATTERN,
  COMPOSE_FILE_PATTERN,
  ENV_NAME_PATTERN,
  REPO_URL_PATTERN,
  SHA_PATTERN,
  SLUG_PATTERN,
} from "../../src/deploy/input-rules.js";
import { API_BODY_MAX_BYTES } from "../../src/http/openapi-document.js";
import { startApiHarness, type ApiHarness } from "../support/api-harness.js";

interface Operation {
  parameters?: Array<{ in: string; name: string; schema?: { pattern?: string } }>;
  requestBody?: unknown;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>> }> };
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

let api: ApiHarness;
let doc: Document;

beforeAll(async () => {
  api = await startApiHarness();
  doc = (await (await api.app.request("/openapi.json")).json()) as Document;
});
afterAll(async () => {
  await api.close();
});

/** Every operation of the document: [method, path, operation]. */
function operations(): Array<[string, string, Operation]> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]): [string, string, Operation] => [method, path, op]),
  );
}

/** The statuses docs/api.md says a route of this shape can answer with an error. */
function expectedErrors(path: string, op: Operation): string[] {
  const secured = op.security === undefined || op.security.length > 0;
  const takesInput = (op.parameters?.length ?? 0) > 0 || op.requestBody !== undefined;
  return [
    ...(takesInput ? ["400"] : []),
    ...(secured ? ["401", "403", "429", "503"] : []),
    ...(path.includes("{") ? ["404"] : []),
    ...(op.requestBody !== undefined ? ["413"] : []),
  ];
}

/** A concrete path for a templated one: every parameter a slug that names nothing. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "0nothing");

describe("the OpenAPI document", () => {
  it("lists every route the server registers, API and auth routes alike", () => {
    expect(operations().length).toBeGreaterThanOrEqual(19);
    expect(doc.paths["/api/projects"]).toBeDefined();
    expect(doc.paths["/api/operations/{id}/cancel"]).toBeDefined();
  });

  it("documents on every route the 400, 401, 403, 404, 413, 429 and 503 its parameters, body and security can cause", () => {
    const missing = operations().flatMap(([method, path, op]) =>
      expectedErrors(path, op)
        .filter((status) => op.responses[status] === undefined)
        .map((status) => `${method.toUpperCase()} ${path}: ${status}`),
    );
    expect(missing).toEqual([]);
  });

  it("gives every documented 4xx and 503 answer the error envelope", () => {
    const wrong = operations().flatMap(([method, path, op]) =>
      Object.entries(op.responses)
        .filter(([status]) => /^4\d\d$/.test(status))
        .filter(
          ([, response]) =>
            response.content?.["application/json"]?.schema?.$ref !== "#/components/schemas/Error",
        )
        .map(([status]) => `${method.toUpperCase()} ${path}: ${status}`),
    );
    expect(wrong).toEqual([]);
  });

  it("states each input rule with the very pattern the domain code checks", () => {
    const schemas = doc.components.schemas;
    const project = schemas.ProjectCreate?.properties ?? {};
    expect(project.name?.pattern).toBe(SLUG_PATTERN.source);
    expect(project.repoUrl?.pattern).toBe(REPO_URL_PATTERN.source);
    expect(project.composeFile?.pattern).toBe(COMPOSE_FILE_PATTERN.source);
    expect(project.env?.propertyNames).toEqual({ pattern: ENV_NAME_PATTERN.source });
    const autoDeploy = project.autoDeploy as { properties?: { branches?: { items?: unknown } } };
    expect(autoDeploy.properties?.branches?.items).toMatchObject({
      pattern: BRANCH_GLOB_PATTERN.source,
    });
    const version = schemas.VersionCreate?.properties ?? {};
    expect(version.ref?.pattern).toBe(API_REF_PATTERN.source);
    expect(version.sha?.pattern).toBe(SHA_PATTERN.source);
    const params = doc.paths["/api/projects/{project}/versions/{version}"]?.get?.parameters ?? [];
    expect(params.map((p) => [p.name, p.schema?.pattern])).toEqual([
      ["project", SLUG_PATTERN.source],
      ["version", SLUG_PATTERN.source],
    ]);
  });
});

describe("methods a path does not serve", () => {
  // OPTIONS: fetch refuses to send TRACE; schemathesis compares exactly OPTIONS' Allow with the
  // document, and sends TRACE over a socket (test/integration/openapi-fuzz.test.ts).
  it("answers OPTIONS on every documented path 405 with Allow naming exactly its documented methods", async () => {
    const wrong: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      const documented = Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => m.toUpperCase());
      if (documented.includes("GET")) documented.push("HEAD");
      const res = await api.call("OPTIONS", concrete(path));
      const body = (await res.json()) as { error?: { code?: string } };
      const allow = (res.headers.get("allow") ?? "").split(", ").sort();
      if (res.status !== 405 || body.error?.code !== "method_not_allowed") {
        wrong.push(`${path}: ${res.status} ${body.error?.code}`);
      } else if (allow.join(",") !== documented.sort().join(",")) {
        wrong.push(`${path}: Allow ${allow.join(",")} but documented ${documented.join(",")}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("answers PUT on the webhook receiver 405 with Allow: POST", async () => {
    const res = await api.app.request("/webhooks/gitlab", { method: "PUT" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.json()).toMatchObject({ error: { code: "method_not_allowed" } });
  });

  it("answers 404, not 405, on a path no route has", async () => {
    const res = await api.call("PUT", "/api/nothing-here");
    expect(res.status).toBe(404);
    expect(res.headers.get("allow")).toBeNull();
  });

  it("still answers HEAD on a GET route as GET, without a body", async () => {
    const res = await api.call("HEAD", "/api/projects");
    expect(res.status).toBe(200);
  });
});

describe("answers the document lists", () => {
  it("answers 400 for a path parameter that is no id or name (too long, upper case)", async () => {
    for (const key of ["x".repeat(64), "Shop", "a_b"]) {
      const res = await api.call("GET", `/api/projects/${key}`);
      expect(res.status, key).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: "invalid_request" } });
    }
  });

  it("answers 400 for an integer query parameter not written in decimal digits", async () => {
    await api.call("POST", "/api/projects", { name: "digits", repoUrl: "git@h:a.git" });
    for (const limit of ["1e2", "0x10", "%205", "1.5", "0"]) {
      const res = await api.call("GET", `/api/projects/digits/deliveries?limit=${limit}`);
      expect(res.status, limit).toBe(400);
    }
    expect((await api.call("GET", "/api/projects/digits/deliveries?limit=100")).status).toBe(200);
  });

  it("answers 413 too_large for a body over the API's limit and stores nothing", async () => {
    const res = await api.call("POST", "/api/projects", {
      name: "big",
      repoUrl: "git@gitlab.example.com:team/big.git",
      env: { A: "x".repeat(60_000), B: "x".repeat(API_BODY_MAX_BYTES) },
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "too_large" } });
    expect(await api.store.getProjectByName("big")).toBeUndefined();
  });

  it("accepts what the rules accept: an env value of 65536 emoji, a tag ref with a slash", async () => {
    const created = await api.call("POST", "/api/projects", {
      name: "emoji",
      repoUrl: "ssh://git@gitlab.example.com:2222/team/emoji.git",
      composeFile: "deploy/compose.yaml",
      autoDeploy: { branches: ["release/*"] },
      env: { GREETING: "😀".repeat(65536) },
    });
    expect(created.status).toBe(201);
    const version = await api.call("POST", "/api/projects/emoji/versions", {
      ref: "refs/tags/v1/rc",
    });
    expect(version.status).toBe(201);
    expect(await version.json()).toMatchObject({ ref: { type: "tag", name: "v1/rc" } });
  });

  it("refuses with 400 what the rules refuse: refs/heads/-x, a compose file outside, an env value too long", async () => {
    const bad = [
      ["/api/projects", { name: "p1", repoUrl: "git@h:a.git", composeFile: "/etc/compose.yaml" }],
      ["/api/projects", { name: "p2", repoUrl: "git@h:a.git", env: { A: "😀".repeat(65537) } }],
      ["/api/projects", { name: "p3", repoUrl: "https://user:pw@h/a.git" }],
    ] as const;
    for (const [url, body] of bad) {
      const res = await api.call("POST", url, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
    expect(
      (await api.call("POST", "/api/projects", { name: "p4", repoUrl: "git@h:a.git" })).status,
    ).toBe(201);
    const ref = await api.call("POST", "/api/projects/p4/versions", { ref: "refs/heads/-x" });
    expect(ref.status).toBe(400);
    expect(await ref.json()).toMatchObject({ error: { code: "invalid_request" } });
  });
});
