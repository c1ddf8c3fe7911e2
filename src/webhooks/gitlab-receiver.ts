// POST /webhooks/gitlab. GitLab gives up after 10 s and counts 4xx/5xx toward disabling the hook
// (GITLAB.md §2), so this answers in milliseconds: it checks the token, dedupes the delivery,
// turns the payload into intents and stores the queued operations, then answers 202; the deploys
// themselves run afterwards in the runner. Events it does not act on get a 2xx with the reason.
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "pino";
import { intentsFromDelivery, type Intent } from "./intents.js";
import { verifyGitlabToken } from "./verify-gitlab-token.js";
import type { DeployService } from "../deploy/deploy-service.js";
import type { Store } from "../store/store.js";
import type { DeliveryRecord, ProjectRecord } from "../store/types.js";

export interface GitlabReceiverDeps {
  service: DeployService;
  store: Store;
  logger: Logger;
  /** Largest body accepted (GitLab sends up to 25 MB; pushes are far smaller). */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY = 5 * 1024 * 1024;

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** The payload's GitLab project id, read without trusting the payload's shape. */
function payloadProjectId(payload: unknown): number | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const p = payload as { project?: { id?: unknown }; project_id?: unknown };
  const id = p.project?.id ?? p.project_id;
  return typeof id === "number" ? id : undefined;
}

/** Projects whose secret matches, before anything of the body is read. */
function tokenMatchesAny(token: string | undefined, projects: ProjectRecord[]): boolean {
  // Without the payload a linked project can't be told apart yet: compare the secrets alone.
  const unlinked = projects.map((p) => {
    const { gitlab: _gitlab, ...rest } = p;
    return rest;
  });
  return verifyGitlabToken(token, unlinked) !== undefined;
}

/** Projects read once per request, for the token check and the project lookup alike. */
type ReceiverEnv = { Variables: { projects: ProjectRecord[] } };

export function gitlabReceiver(deps: GitlabReceiverDeps): Hono<ReceiverEnv> {
  const app = new Hono<ReceiverEnv>();
  const log = deps.logger.child({ component: "webhooks" });
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY;

  app.post(
    "/gitlab",
    async (c, next) => {
      // The token first: a wrong one is answered 401 before the body is read or parsed.
      const token = c.req.header("x-gitlab-token");
      const projects = await deps.store.listProjects();
      if (!tokenMatchesAny(token, projects)) {
        return c.json(
          errorBody("unauthorized", "X-Gitlab-Token matches no project's webhook secret"),
          401,
        );
      }
      c.set("projects", projects);
      return next();
    },
    bodyLimit({
      maxSize: maxBody,
      onError: (c) => c.json(errorBody("too_large", `body larger than ${maxBody} bytes`), 413),
    }),
    async (c) => {
      const event = c.req.header("x-gitlab-event") ?? "";
      let payload: unknown;
      try {
        payload = JSON.parse(await c.req.text());
      } catch {
        return c.json(errorBody("invalid_request", "body is not JSON"), 400);
      }
      const token = c.req.header("x-gitlab-token");
      const project = verifyGitlabToken(token, c.get("projects"), payloadProjectId(payload));
      if (!project) {
        return c.json(
          errorBody(
            "unauthorized",
            "X-Gitlab-Token matches no project linked to this GitLab project",
          ),
          401,
        );
      }
      const key =
        c.req.header("idempotency-key") ?? c.req.header("x-gitlab-event-uuid") ?? randomUUID();
      const delivery: DeliveryRecord = {
        id: randomUUID(),
        projectId: project.id,
        deliveryKey: key,
        event,
        receivedAt: new Date().toISOString(),
        outcome: "accepted",
        operationIds: [],
      };
      const dlog = log.child({ deliveryId: delivery.id, project: project.name, event });
      if (!(await deps.store.insertDelivery(delivery))) {
        // Seen before: listed as a duplicate so a user sees GitLab retried, and nothing runs.
        await deps.store.insertDelivery({
          ...delivery,
          deliveryKey: `${key}#duplicate-${delivery.id}`,
          outcome: "duplicate",
          reason: "delivery seen before (same Idempotency-Key or X-Gitlab-Event-UUID)",
        });
        dlog.info("duplicate delivery ignored");
        return c.json({ duplicate: true }, 200);
      }
      const result = intentsFromDelivery(event, payload, project);
      if ("ignored" in result) {
        await deps.store.updateDelivery(delivery.id, {
          outcome: "ignored",
          reason: result.ignored,
        });
        dlog.info({ reason: result.ignored }, "delivery ignored");
        return c.json({ ignored: result.ignored }, 200);
      }
      const operationIds: string[] = [];
      const skipped: string[] = [];
      for (const intent of result.intents) {
        const opId = await applyIntent(deps.service, project, intent, {
          event,
          deliveryId: delivery.id,
        });
        if (opId) operationIds.push(opId);
        else skipped.push(`no version '${intent.versionName}' to delete`);
      }
      if (operationIds.length === 0) {
        const reason = skipped.join("; ") || "nothing to do";
        await deps.store.updateDelivery(delivery.id, { outcome: "ignored", reason, operationIds });
        return c.json({ ignored: reason }, 200);
      }
      await deps.store.updateDelivery(delivery.id, { operationIds });
      dlog.info({ operationIds }, "delivery accepted");
      return c.json({ operations: operationIds }, 202);
    },
  );

  return app;
}

async function applyIntent(
  service: DeployService,
  project: ProjectRecord,
  intent: Intent,
  trigger: { event: string; deliveryId: string },
): Promise<string | undefined> {
  const source = {
    source: "webhook" as const,
    event: trigger.event,
    deliveryId: trigger.deliveryId,
  };
  if (intent.action === "on") {
    const version = await service.ensureVersionForRef(project, intent.ref);
    return (await service.requestOperation(version, "up", source, { sha: intent.sha })).id;
  }
  const version = await service.findVersionByRef(project, intent.ref);
  if (!version) return undefined;
  return (await service.requestOperation(version, "delete", source)).id;
}
