import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startApiHarness, type ApiHarness, type StoreKind } from "../support/api-harness.js";
import { checkMongo } from "../support/mongo.js";
import { describeWithServices, type ServiceCheck } from "../support/services.js";

// The same routes over both stores: the embedded SQLite file and a real MongoDB server.
const stores: Array<[StoreKind, ServiceCheck[]]> = [
  ["sqlite", []],
  ["mongodb", [await checkMongo()]],
];

for (const [kind, checks] of stores) {
  describeWithServices(checks, `API routes over ${kind}`, () => {
    let h: ApiHarness;
    beforeEach(async () => {
      h = await startApiHarness(kind);
    });
    afterEach(async () => {
      await h.close();
    });

    const project = {
      name: "shop",
      repoUrl: "ssh://git@127.0.0.1:2222/srv/git/shop.git",
      env: { API_KEY: "s3cret-value" },
    };

    async function createProject(body: Record<string, unknown> = project) {
      const res = await h.call("POST", "/api/projects", body);
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; name: string; webhookSecret: string };
    }

    async function createVersion(ref = "main", extra: Record<string, unknown> = {}) {
      const res = await h.call("POST", "/api/projects/shop/versions", { ref, ...extra });
      expect(res.status).toBe(201);
      return (await res.json()) as { id: string; name: string; state: string };
    }

    describe("health and key", () => {
      it("answers health without a token", async () => {
        const res = await h.app.request("/api/health");
        expect(res.status).toBe(200);
        const body = (await res.json()) as { disk: { dataFreeBytes: unknown } };
        expect(body).toMatchObject({ status: "ok", store: kind, docker: "ok", compose: "v2" });
        // The data dir is a temp dir here: its free space is always readable.
        expect(body.disk.dataFreeBytes).toBeGreaterThan(0);
      });

      it("serves the public SSH key without a token", async () => {
        const res = await h.app.request("/api/ssh-key");
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({
          publicKey: "ssh-ed25519 AAAAtest dockbot",
          fingerprint: "SHA256:test",
        });
      });

      it("answers 503 when the store is gone", async () => {
        await h.store.close();
        const res = await h.app.request("/api/health");
        expect(res.status).toBe(503);
        expect(((await res.json()) as { status: string }).status).toBe("unavailable");
      });
    });

    describe("projects", () => {
      it("creates a project, shows the webhook secret once and masks env values", async () => {
        const created = await createProject();
        expect(created).toMatchObject({
          name: "shop",
          repoUrl: project.repoUrl,
          env: { API_KEY: "***" },
          autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
          webhookUrl: "http://dockbot.test/webhooks/gitlab",
        });
        expect(created.webhookSecret.length).toBeGreaterThanOrEqual(24);
        const got = await (await h.call("GET", "/api/projects/shop")).json();
        expect(got).not.toHaveProperty("webhookSecret");
        expect(JSON.stringify(got)).not.toContain("s3cret-value");
        const secret = await (
          await h.call("GET", `/api/projects/${created.id}/webhook-secret`)
        ).json();
        expect(secret).toEqual({ webhookSecret: created.webhookSecret });
      });

      it("answers 409 for a duplicate name and stores nothing", async () => {
        await createProject();
        const res = await h.call("POST", "/api/projects", {
          ...project,
          repoUrl: "git@gitlab.example.com:a/b.git",
        });
        expect(res.status).toBe(409);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("conflict");
        expect(await h.store.listProjects()).toHaveLength(1);
      });

      it.each([
        [{ ...project, name: "Bad Name" }, "name"],
        [{ ...project, repoUrl: "--upload-pack=touch /tmp/x" }, "repoUrl"],
        [{ ...project, repoUrl: "$(touch /tmp/x)" }, "repoUrl"],
        [{ ...project, repoUrl: "ext::sh -c touch% /tmp/x" }, "repoUrl"],
        [{ ...project, composeFile: "../../etc/passwd" }, "composeFile"],
        [{ ...project, env: { "BAD-NAME": "x" } }, "env"],
        [{ ...project, extra: 1 }, ""],
      ])("answers 400 naming the field for %j", async (body, field) => {
        const res = await h.call("POST", "/api/projects", body);
        expect(res.status).toBe(400);
        const json = (await res.json()) as { error: { code: string; message: string } };
        expect(json.error.code).toBe("invalid_request");
        expect(json.error.message).toContain(field);
        expect(await h.store.listProjects()).toHaveLength(0);
      });

      it("answers 400 for a body that is not JSON", async () => {
        const res = await h.call("POST", "/api/projects", "{not json", {
          "content-type": "application/json",
        });
        expect(res.status).toBe(400);
      });

      it("patches fields and keeps env write-only", async () => {
        await createProject();
        const res = await h.call("PATCH", "/api/projects/shop", {
          autoDeploy: { tags: false },
          env: { API_KEY: "new", OTHER: "x" },
        });
        expect(res.status).toBe(200);
        const json = (await res.json()) as { autoDeploy: unknown; env: unknown };
        expect(json.autoDeploy).toEqual({ branches: ["*"], tags: false, mergeRequests: true });
        expect(json.env).toEqual({ API_KEY: "***", OTHER: "***" });
        expect((await h.store.getProjectByName("shop"))?.env).toEqual({
          API_KEY: "new",
          OTHER: "x",
        });
      });

      it("keeps autoStop, maxRunning and limits, fills idleHours from the default, and removes them with null", async () => {
        await createProject();
        const fresh = (await (await h.call("GET", "/api/projects/shop")).json()) as Record<
          string,
          unknown
        >;
        expect(fresh.autoStop).toEqual({
          idleHours: 72,
          exemptDefaultBranch: true,
          exemptTags: true,
        });
        expect(fresh.maxRunning).toBeUndefined();
        expect(fresh.limits).toBeUndefined();

        const patched = await h.call("PATCH", "/api/projects/shop", {
          autoStop: { idleHours: 0.25, exemptTags: false },
          maxRunning: 3,
          limits: { cpus: 0.5, memory: "512m" },
        });
        expect(patched.status).toBe(200);
        expect(await patched.json()).toMatchObject({
          autoStop: { idleHours: 0.25, exemptDefaultBranch: true, exemptTags: false },
          maxRunning: 3,
          limits: { cpus: 0.5, memory: "512m" },
        });
        // A later patch of one autoStop field keeps the others.
        const again = await h.call("PATCH", "/api/projects/shop", {
          autoStop: { exemptDefaultBranch: false },
        });
        expect(((await again.json()) as { autoStop: unknown }).autoStop).toEqual({
          idleHours: 0.25,
          exemptDefaultBranch: false,
          exemptTags: false,
        });

        const removed = await h.call("PATCH", "/api/projects/shop", {
          maxRunning: null,
          limits: null,
        });
        const json = (await removed.json()) as Record<string, unknown>;
        expect(json.maxRunning).toBeUndefined();
        expect(json.limits).toBeUndefined();
        const stored = await h.store.getProjectByName("shop");
        expect(stored?.maxRunning).toBeUndefined();
        expect(stored?.limits).toBeUndefined();
        expect(stored?.autoStop).toEqual({
          idleHours: 0.25,
          exemptDefaultBranch: false,
          exemptTags: false,
        });
      });

      it.each([
        [{ autoStop: { idleHours: -1 } }, "autoStop.idleHours"],
        [{ maxRunning: 0 }, "maxRunning"],
        [{ maxRunning: 1.5 }, "maxRunning"],
        [{ limits: { cpus: 0 } }, "limits.cpus"],
        [{ limits: { memory: "lots" } }, "limits.memory"],
        [{ limits: { swap: "1g" } }, "limits"],
      ])("refuses the project setting %j naming %s", async (body, field) => {
        await createProject();
        const res = await h.call("PATCH", "/api/projects/shop", body);
        expect(res.status).toBe(400);
        expect(JSON.stringify(await res.json())).toContain(field);
      });

      it("answers 404 for an unknown project", async () => {
        const res = await h.call("GET", "/api/projects/nope");
        expect(res.status).toBe(404);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
      });

      it("deletes a project without versions at once", async () => {
        await createProject();
        const res = await h.call("DELETE", "/api/projects/shop");
        expect(res.status).toBe(202);
        expect((await h.call("GET", "/api/projects/shop")).status).toBe(404);
      });

      it("queues a delete of every version before deleting a project", async () => {
        await createProject();
        await createVersion("main");
        await createVersion("dev");
        const res = await h.call("DELETE", "/api/projects/shop");
        expect(res.status).toBe(202);
        const json = (await res.json()) as { operations: Array<{ kind: string; status: string }> };
        expect(json.operations.map((o) => [o.kind, o.status])).toEqual([
          ["delete", "queued"],
          ["delete", "queued"],
        ]);
        expect((await h.call("GET", "/api/projects/shop")).status).toBe(200);
      });
    });

    describe("auth", () => {
      it("answers 401 without a token and with a wrong one", async () => {
        expect((await h.app.request("/api/projects")).status).toBe(401);
        const wrong = await h.app.request("/api/projects", {
          headers: { authorization: "Bearer nope" },
        });
        expect(wrong.status).toBe(401);
        expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe(
          "unauthorized",
        );
      });
    });

    describe("versions and operations", () => {
      beforeEach(async () => {
        await createProject();
      });

      it("creates a version from a branch in state off, named by slug", async () => {
        const v = await createVersion("feature/Login_2");
        expect(v).toMatchObject({
          name: "feature-login-2",
          state: "off",
          ref: { type: "branch", name: "feature/Login_2" },
        });
        expect((v as unknown as { composeProject: string }).composeProject).toBe(
          "dockbot-shop-feature-login-2",
        );
      });

      it("creates commit and tag versions", async () => {
        const c = await createVersion("0123456789abcdef0123456789abcdef01234567");
        expect(c).toMatchObject({
          ref: { type: "commit" },
          sha: "0123456789abcdef0123456789abcdef01234567",
        });
        const t = await createVersion("refs/tags/v1.0");
        expect(t).toMatchObject({ name: "v1-0", ref: { type: "tag", name: "v1.0" } });
      });

      it.each(["--upload-pack=touch /tmp/x", "$(touch /tmp/x)", "a..b", "bad ref"])(
        "answers 400 for the ref %j",
        async (ref) => {
          const res = await h.call("POST", "/api/projects/shop/versions", { ref });
          expect(res.status).toBe(400);
          expect(await h.store.listVersions()).toHaveLength(0);
        },
      );

      it("answers 409 for a duplicate version name", async () => {
        await createVersion("main");
        const res = await h.call("POST", "/api/projects/shop/versions", {
          ref: "other",
          name: "main",
        });
        expect(res.status).toBe(409);
      });

      it("turns a version on with a stored queued operation and the version queued", async () => {
        const v = await createVersion("main");
        const res = await h.call("POST", `/api/projects/shop/versions/${v.id}/on`);
        expect(res.status).toBe(202);
        const op = (await res.json()) as {
          id: string;
          kind: string;
          status: string;
          trigger: unknown;
        };
        expect(op).toMatchObject({ kind: "up", status: "queued", trigger: { source: "api" } });
        expect((await h.store.getOperation(op.id))?.status).toBe("queued");
        const version = (await (
          await h.call("GET", "/api/projects/shop/versions/main")
        ).json()) as {
          state: string;
          lastOperation: { id: string };
        };
        expect(version.state).toBe("queued");
        expect(version.lastOperation.id).toBe(op.id);
      });

      it("supersedes a queued operation when a newer one is queued for the same version", async () => {
        await createVersion("main");
        const first = (await (
          await h.call("POST", "/api/projects/shop/versions/main/on")
        ).json()) as { id: string };
        const second = (await (
          await h.call("POST", "/api/projects/shop/versions/main/off")
        ).json()) as { id: string };
        expect((await h.store.getOperation(first.id))?.status).toBe("superseded");
        expect((await h.store.getOperation(second.id))?.status).toBe("queued");
      });

      it("cancels a queued operation", async () => {
        await createVersion("main");
        const op = (await (await h.call("POST", "/api/projects/shop/versions/main/on")).json()) as {
          id: string;
        };
        const res = await h.call("POST", `/api/operations/${op.id}/cancel`);
        expect(res.status).toBe(202);
        expect(((await res.json()) as { status: string }).status).toBe("canceled");
        const again = await h.call("POST", `/api/operations/${op.id}/cancel`);
        expect(again.status).toBe(409);
      });

      it("queues a delete with keepVolumes", async () => {
        await createVersion("main");
        const res = await h.call("DELETE", "/api/projects/shop/versions/main?keepVolumes=true");
        expect(res.status).toBe(202);
        const op = (await res.json()) as { id: string; kind: string };
        expect(op.kind).toBe("delete");
        expect((await h.store.getOperation(op.id))?.options).toEqual({ keepVolumes: true });
      });

      it("answers 404 on view before any operation, and for unknown versions and operations", async () => {
        await createVersion("main");
        expect((await h.call("GET", "/api/projects/shop/versions/main/view")).status).toBe(404);
        expect((await h.call("GET", "/api/projects/shop/versions/nope")).status).toBe(404);
        expect((await h.call("GET", "/api/operations/nope")).status).toBe(404);
      });

      it("serves the log as text/plain", async () => {
        await createVersion("main");
        const op = (await (await h.call("POST", "/api/projects/shop/versions/main/on")).json()) as {
          id: string;
        };
        await h.store.appendLogLines([
          {
            operationId: op.id,
            seq: 1,
            stream: "stdout",
            text: "one",
            time: new Date().toISOString(),
          },
          {
            operationId: op.id,
            seq: 2,
            stream: "stderr",
            text: "two",
            time: new Date().toISOString(),
          },
        ]);
        const res = await h.call("GET", `/api/operations/${op.id}/log`);
        expect(res.headers.get("content-type")).toContain("text/plain");
        expect(await res.text()).toBe("one\ntwo\n");
        const view = (await (
          await h.call("GET", "/api/projects/shop/versions/main/view")
        ).json()) as { log: string };
        expect(view.log).toBe("one\ntwo\n");
      });
    });

    describe("OpenAPI", () => {
      it("documents every route of the contract", async () => {
        const res = await h.app.request("/openapi.json");
        expect(res.status).toBe(200);
        const doc = (await res.json()) as {
          openapi: string;
          paths: Record<string, Record<string, unknown>>;
        };
        expect(doc.openapi).toBe("3.1.0");
        const routes = Object.entries(doc.paths).flatMap(([p, methods]) =>
          Object.keys(methods).map((m) => `${m} ${p}`),
        );
        for (const route of [
          "get /api/health",
          "get /api/ssh-key",
          "post /api/projects",
          "get /api/projects",
          "get /api/projects/{project}",
          "patch /api/projects/{project}",
          "delete /api/projects/{project}",
          "post /api/projects/{project}/versions",
          "get /api/projects/{project}/versions",
          "get /api/projects/{project}/versions/{version}",
          "post /api/projects/{project}/versions/{version}/on",
          "post /api/projects/{project}/versions/{version}/off",
          "get /api/projects/{project}/versions/{version}/view",
          "delete /api/projects/{project}/versions/{version}",
          "get /api/operations/{id}",
          "get /api/operations/{id}/log",
          "post /api/operations/{id}/cancel",
          "get /api/projects/{project}/deliveries",
        ]) {
          expect(routes).toContain(route);
        }
      });
    });
  });
}
