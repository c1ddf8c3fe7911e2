// Applies the rule table (rules.ts) to a request: finds its project (and version), checks the
// asker's right, and after a change that succeeded records it in the audit log. One function for
// the API's middleware and the dashboard's, so both enforce the same table the same way.
import type { Context } from "hono";
import type { Auth, Identity } from "./auth.js";
import { atLeast, type Right } from "./rights.js";
import type { MatchedRule } from "./rules.js";
import { AppError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { ProjectRecord } from "../store/types.js";

export interface Authorized {
  project?: ProjectRecord;
  versionId?: string;
}

async function findProject(
  store: Store,
  key: string | undefined,
): Promise<ProjectRecord | undefined> {
  if (key === undefined || key === "") return undefined;
  return (await store.getProject(key)) ?? (await store.getProjectByName(key));
}

/**
 * Throws 403 when the identity may not do what the rule needs. A project that does not exist is
 * let through for the route to answer 404 (a non-member learns no more than "not found").
 */
export async function authorize(
  auth: Auth,
  store: Store,
  identity: Identity,
  matched: MatchedRule,
  c: Context,
): Promise<Authorized> {
  const { rule, params } = matched;
  if (rule.need === "public" || rule.need === "signed-in") return {};
  let project: ProjectRecord | undefined;
  let need: Right = rule.need;
  const from = rule.project;
  if (from && "param" in from) {
    project = await findProject(store, params[from.param]);
    if (!project) return {};
  } else if (from && "operationParam" in from) {
    const op = await store.getOperation(params[from.operationParam] ?? "");
    if (!op) return {};
    project = await store.getProject(op.projectId);
    if (!project) return {};
  } else if (from && "query" in from) {
    const key = c.req.query(from.query);
    if (key === undefined || key === "") need = "admin";
    else {
      project = await findProject(store, key);
      if (!project) return {};
    }
  }
  const allowed =
    project === undefined
      ? atLeast(auth.globalRight(identity), need)
      : atLeast(await auth.rightOn(identity, project), need);
  if (!allowed) {
    throw new AppError(
      "forbidden",
      project === undefined
        ? "only dockbot admins may do this"
        : `you may not do this on project '${project.name}' (needs ${need === "maintain" ? "Maintainer" : need === "deploy" ? "Developer" : need === "read" ? "Reporter" : "admin"})`,
    );
  }
  const out: Authorized = project ? { project } : {};
  if (project && rule.versionParam) {
    const key = params[rule.versionParam] ?? "";
    const version =
      (await store.getVersion(key)) ?? (await store.getVersionByName(project.id, key));
    if (version && version.projectId === project.id) out.versionId = version.id;
  }
  return out;
}

/** Records a change that was answered with success (status below 400). */
export async function recordChange(
  auth: Auth,
  identity: Identity,
  matched: MatchedRule,
  authorized: Authorized,
  c: Context,
  source: "api" | "ui",
  address: string,
): Promise<void> {
  const action = matched.rule.action;
  if (action === undefined || c.res.status >= 400) return;
  // A form's redirect to the sign-in page or an error page is no change.
  if (
    source === "ui" &&
    c.res.status === 303 &&
    c.res.headers.get("location")?.startsWith("/login")
  )
    return;
  let projectId = authorized.project?.id;
  if (projectId === undefined && action === "project.create" && source === "api") {
    const body = (await c.res
      .clone()
      .json()
      .catch(() => undefined)) as { id?: unknown } | undefined;
    if (typeof body?.id === "string") projectId = body.id;
  }
  await auth.record({
    actor: auth.actorOf(identity),
    action,
    source,
    request: `${c.req.method} ${c.req.path}`,
    status: c.res.status,
    address,
    ...(projectId === undefined ? {} : { projectId }),
    ...(authorized.versionId === undefined ? {} : { versionId: authorized.versionId }),
  });
}
