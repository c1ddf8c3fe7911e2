// POST /webhooks/gitlab. GitLab gives up after 10 s and counts 4xx/5xx toward disabling the hook
// (docs/gitlab.md §2), so this answers in milliseconds: it checks the token, dedupes the delivery,
// turns the payload into intents and stores the queued operations, then answers 202; the deploys
// themselves run afterwards in the runner. Events it does not act on get a 2xx with the reason.
import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "pino";
import { intentsFromDelivery, type Intent } from "./intents.js";
import { pickProject, projectsWithSecret } from "./verify-gitlab-token.js";
import type { DeployService } from "../deploy/deploy-service.js";
import type { Store } from "../store/store.js";
import type { DeliveryRecord, ProjectRecord, VersionRecord } from "../store/types.js";
import { newId } from "../ids.js";

export interface GitlabReceiverDeps {
  service: DeployService;
  store: Store;
  logger: Logger;
  /** Largest body accepted (GitLab sends up to 25 MB; pushes are far smaller). */
  maxBodyBytes?: number;
  /**
   * Why a merge request may not deploy by itself (its author is below Developer on the project,
   * src/auth), or undefined when it may. Unset: every merge request may.
   */
  mergeRequestRefusal?: (
    project: ProjectRecord,
    authorId: number | undefined,
  ) => Promise<string | undefined>;
}

/** The merge request's author (`object_attributes.author_id`), read without trusting the payload. */
function mergeRequestAuthorId(payload: unknown): number | undefined {
  const attrs = (payload as { object_attributes?: { author_id?: unknown } } | null)
    ?.object_attributes;
  return typeof attrs?.author_id === "number" ? attrs.author_id : undefined;
}

const DEFAULT_MAX_BODY = 5 * 1024 * 1024;

/**
 * The URL GitLab posts every project's events to (main.ts mounts this receiver at /webhooks;
 * the token picks the project): a project's `webhookUrl` and the URL of the hook dockbot adds.
 */
export function webhookUrlFor(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/webhooks/gitlab`;
}

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

/** The projects whose secret the token matched, found before the body is read. */
type ReceiverEnv = { Variables: { matching: ProjectRecord[] } };

export function gitlabReceiver(deps: GitlabReceiverDeps): Hono<ReceiverEnv> {
  const app = new Hono<ReceiverEnv>();
  const log = deps.logger.child({ component: "webhooks" });
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const tooLarge = (c: Context) =>
    c.json(errorBody("too_large", `body larger than ${maxBody} bytes`), 413);
  const streamedLimit = bodyLimit({ maxSize: maxBody, onError: tooLarge });

  app.post(
    "/gitlab",
    async (c, next) => {
      // The token first: a wrong one is answered 401 before the body is read or parsed.
      const matching = projectsWithSecret(
        c.req.header("x-gitlab-token"),
        await deps.store.listProjects(),
      );
      if (matching.length === 0) {
        return c.json(
          errorBody("unauthorized", "X-Gitlab-Token matches no project's webhook secret"),
          401,
        );
      }
      c.set("matching", matching);
      return next();
    },
    async (c, next) => {
      // GitLab declares the length: checked from the header, the body is then read straight
      // off the socket. Only a chunked body goes through hono's counting web stream.
      const length = c.req.header("content-length");
      if (length === undefined || c.req.header("transfer-encoding") !== undefined) {
        return streamedLimit(c, next);
      }
      return Number(length) > maxBody ? tooLarge(c) : next();
    },
    async (c) => {
      const event = c.req.header("x-gitlab-event") ?? "";
      let payload: unknown;
      try {
        payload = JSON.parse(await c.req.text());
      } catch {
        return c.json(errorBody("invalid_request", "body is not JSON"), 400);
      }
      const project = pickProject(c.get("matching"), payloadProjectId(payload));
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
      const result = intentsFromDelivery(event, payload, project);
      // The plan: the id of every operation this delivery will queue, known before the delivery
      // is stored, so it is stored once and complete (the store's unique key on it is the
      // dedupe), and only then acted on.
      const plan: PlannedOperation[] = [];
      const skipped: string[] = [];
      /** Merge requests not deployed by themselves: their version is made, off, for a Developer. */
      const held: Intent[] = [];
      for (const intent of "intents" in result ? result.intents : []) {
        if (
          intent.action === "on" &&
          intent.ref.type === "mergeRequest" &&
          deps.mergeRequestRefusal
        ) {
          const refusal = await deps.mergeRequestRefusal(project, mergeRequestAuthorId(payload));
          if (refusal !== undefined) {
            skipped.push(refusal);
            held.push(intent);
            continue;
          }
        }
        if (intent.action === "on") {
          plan.push({ intent, opId: newId() });
          continue;
        }
        const version = await deps.service.findVersionByRef(project, intent.ref);
        if (version) plan.push({ intent, opId: newId(), version });
        else skipped.push(`no version '${intent.versionName}' to delete`);
      }
      const ignored =
        "ignored" in result
          ? result.ignored
          : plan.length === 0
            ? skipped.join("; ") || "nothing to do"
            : undefined;
      const delivery: DeliveryRecord = {
        id: newId(),
        projectId: project.id,
        deliveryKey: key,
        event,
        receivedAt: new Date().toISOString(),
        outcome: ignored === undefined ? "accepted" : "ignored",
        operationIds: plan.map((p) => p.opId),
      };
      if (ignored !== undefined) delivery.reason = ignored;
      // Fields, not a child logger: a child serializes its bindings even when nothing is logged.
      const about = { deliveryId: delivery.id, project: project.name, event };
      if (!(await deps.store.insertDelivery(delivery))) {
        // Seen before: listed as a duplicate so a user sees GitLab retried, and nothing runs.
        await deps.store.insertDelivery({
          ...delivery,
          deliveryKey: `${key}#duplicate-${delivery.id}`,
          outcome: "duplicate",
          reason: "delivery seen before (same Idempotency-Key or X-Gitlab-Event-UUID)",
          operationIds: [],
        });
        log.info(about, "duplicate delivery ignored");
        return c.json({ duplicate: true }, 200);
      }
      for (const intent of held) await deps.service.ensureVersionForRef(project, intent.ref);
      if (ignored !== undefined) {
        log.info({ ...about, reason: ignored }, "delivery ignored");
        return c.json({ ignored }, 200);
      }
      const trigger = { source: "webhook" as const, event, deliveryId: delivery.id };
      const queued: string[] = [];
      try {
        for (const step of plan) {
          await queueOperation(deps.service, project, step, trigger);
          queued.push(step.opId);
        }
      } catch (error) {
        // Not (fully) acted on: give the key back so GitLab's retry of this delivery is taken
        // instead of being answered as a duplicate, and say why in the list (with the operations
        // that were queued, if any). The error itself (a 503 when the store is down) goes to the
        // caller.
        await deps.store
          .updateDelivery(delivery.id, {
            deliveryKey: `${key}#failed-${delivery.id}`,
            outcome: "ignored",
            reason: `failed: ${error instanceof Error ? error.message : String(error)}`,
            operationIds: queued,
          })
          .catch((e: unknown) =>
            log.warn({ ...about, err: e }, "could not mark the delivery failed"),
          );
        throw error;
      }
      log.info({ ...about, operationIds: delivery.operationIds }, "delivery accepted");
      return c.json({ operations: delivery.operationIds }, 202);
    },
  );

  return app;
}

interface PlannedOperation {
  intent: Intent;
  opId: string;
  /** The version a delete removes, found while planning. */
  version?: VersionRecord;
}

async function queueOperation(
  service: DeployService,
  project: ProjectRecord,
  step: PlannedOperation,
  trigger: { source: "webhook"; event: string; deliveryId: string },
): Promise<void> {
  if (step.intent.action === "on") {
    let version = await service.ensureVersionForRef(project, step.intent.ref);
    const sourceBranch = step.intent.ref.sourceBranch;
    if (sourceBranch !== undefined && version.ref.sourceBranch !== sourceBranch) {
      // A version made before its merge request's source branch was known learns it here.
      version =
        (await service.store.updateVersion(version.id, {
          ref: { ...version.ref, sourceBranch },
        })) ?? version;
    }
    await service.requestOperation(version, "up", trigger, { sha: step.intent.sha, id: step.opId });
  } else if (step.version) {
    await service.requestOperation(step.version, "delete", trigger, { id: step.opId });
  }
}
