import { createRoute, z } from "@hono/zod-openapi";
import { newRouter, type AppDeps } from "./app.js";
import type { DiskFree } from "../deploy/disk.js";

const HealthSchema = z
  .object({
    status: z.enum(["ok", "unavailable"]),
    store: z.enum(["sqlite", "mongodb"]),
    docker: z.enum(["ok", "unreachable"]),
    compose: z.enum(["v2", "v1", "missing"]),
    disk: z
      .object({
        dockerFreeBytes: z.number().int().nonnegative().nullable().openapi({
          description:
            "Free bytes of the Docker data root (DockerRootDir); null when that path is not visible to dockbot (a remote engine, or dockbot in a container without it mounted at the same path)",
        }),
        dataFreeBytes: z.number().int().nonnegative().nullable().openapi({
          description: "Free bytes of DOCKBOT_DATA_DIR; null when it cannot be read",
        }),
      })
      .openapi("DiskFree"),
  })
  .openapi("Health");

const SshKeySchema = z.object({ publicKey: z.string(), fingerprint: z.string() }).openapi("SshKey");

/** How long a Docker probe answer is reused: health checks come every few seconds. */
const DOCKER_PROBE_TTL_MS = 5000;
const STORE_PING_TIMEOUT_MS = 2000;

export function systemRoutes(deps: AppDeps) {
  const app = newRouter();
  let dockerProbe: { at: number; value: Promise<boolean> } | undefined;
  const dockerOk = () => {
    if (!dockerProbe || Date.now() - dockerProbe.at > DOCKER_PROBE_TTL_MS) {
      dockerProbe = { at: Date.now(), value: deps.compose.dockerReachable().catch(() => false) };
    }
    return dockerProbe.value;
  };
  // statfs is a cheap system call and the probe caches the Docker root dir: asked every time.
  const diskFree = async (): Promise<DiskFree> => {
    if (!deps.disk) return { docker: null, data: null };
    try {
      return await deps.disk.free();
    } catch (error) {
      deps.logger.warn({ err: error }, "disk free space could not be read");
      return { docker: null, data: null };
    }
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/health",
      summary: "Health of dockbot, its store, Docker and Compose",
      security: [],
      responses: {
        200: { description: "healthy", content: { "application/json": { schema: HealthSchema } } },
        503: {
          description: "the store is unavailable",
          content: { "application/json": { schema: HealthSchema } },
        },
      },
    }),
    async (c) => {
      const [storeOk, docker, compose, disk] = await Promise.all([
        // A lost MongoDB can leave ping waiting for server selection: answer 503 quickly instead.
        Promise.race([
          deps.store.ping().then(
            () => true,
            () => false,
          ),
          new Promise<boolean>((resolve) =>
            setTimeout(() => resolve(false), STORE_PING_TIMEOUT_MS).unref(),
          ),
        ]),
        dockerOk(),
        deps.compose.detect().catch(() => "missing" as const),
        diskFree(),
      ]);
      const body = {
        status: storeOk ? ("ok" as const) : ("unavailable" as const),
        store: deps.store.kind,
        docker: docker ? ("ok" as const) : ("unreachable" as const),
        compose,
        disk: {
          dockerFreeBytes: disk.docker?.freeBytes ?? null,
          dataFreeBytes: disk.data?.freeBytes ?? null,
        },
      };
      return storeOk ? c.json(body, 200) : c.json(body, 503);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/ssh-key",
      summary: "dockbot's public SSH key: add it to GitLab as a deploy key",
      security: [],
      responses: {
        200: {
          description: "the public key",
          content: { "application/json": { schema: SshKeySchema } },
        },
      },
    }),
    (c) => c.json({ publicKey: deps.sshKey.publicKey, fingerprint: deps.sshKey.fingerprint }, 200),
  );

  return app;
}
