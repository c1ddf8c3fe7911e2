// GitLab webhook delivery -> deploy intents. Pure: no I/O, no clock, no store, so it is tested
// table-driven on GitLab's own sample payloads (test/fixtures/gitlab). The receiver around it
// verifies the token, dedupes the delivery and turns intents into queued operations.
//
// Payloads are untrusted input: every field used here is validated with zod, every ref name must
// pass isValidRefName (it reaches git later) and every SHA must be a full 40-hex object id.
// Anything malformed, unknown or not wanted by the project is `{ignored: reason}`, never a throw:
// the receiver answers GitLab 200 for those (4xx would count towards disabling the hook).
import picomatch from "picomatch";
import { z } from "zod";
import { isValidRefName, versionNameForRef } from "../deploy/names.js";
import type { ProjectRecord, RefType } from "../store/types.js";

export interface IntentRef {
  type: RefType;
  name: string;
  /** A merge request's source branch: GitLab's deployments of its version are on that ref. */
  sourceBranch?: string;
}

export type Intent =
  | { action: "on"; ref: IntentRef; sha: string; versionName: string }
  | { action: "delete"; ref: IntentRef; versionName: string };

export type IntentsResult = { intents: Intent[] } | { ignored: string };

/** A full SHA-1 object id as GitLab sends it (lowercase hex). */
const SHA = z.string().regex(/^[0-9a-f]{40}$/, "not a 40-hex commit SHA");
/** `after` of a push that deletes the ref ("Checkout sha is nil when we remove branch or tag"). */
const ZERO_SHA = "0000000000000000000000000000000000000000";

const projectSchema = z.object({ id: z.number().int().positive() });

const pushSchema = z.object({
  object_kind: z.enum(["push", "tag_push"]),
  ref: z.string().min(1).max(300),
  before: SHA,
  after: SHA,
  // null when the ref is deleted; for tags the commit the tag points to (dereferenced).
  checkout_sha: SHA.nullable().optional(),
  project: projectSchema,
});

const mergeRequestSchema = z.object({
  object_kind: z.literal("merge_request"),
  project: projectSchema,
  object_attributes: z.object({
    iid: z.number().int().positive(),
    action: z.string().optional(),
    state: z.string().optional(),
    // Present only when code changed (new commits pushed, a suggestion applied).
    oldrev: SHA.nullable().optional(),
    source_branch: z.string().max(300).optional(),
    source_project_id: z.number().int().positive().optional(),
    target_project_id: z.number().int().positive().optional(),
    last_commit: z.object({ id: SHA }).optional(),
  }),
});

/** Events dockbot reads; every other X-Gitlab-Event value is ignored by name. */
const HANDLED_EVENTS = new Set(["Push Hook", "Tag Push Hook", "Merge Request Hook"]);

/**
 * Turns one delivery (the X-Gitlab-Event header and the parsed JSON body) into what dockbot
 * should do for `project`, or the reason it does nothing.
 */
export function intentsFromDelivery(
  event: string,
  payload: unknown,
  project: ProjectRecord,
): IntentsResult {
  if (event === "System Hook") {
    // System hooks carry push payloads of every project on the instance: never act on them.
    return { ignored: "system hooks are not acted on; add a project webhook instead" };
  }
  if (!HANDLED_EVENTS.has(event)) {
    return { ignored: `event '${clip(event)}' is not acted on` };
  }

  const otherProject = checkGitlabProject(payload, project);
  if (otherProject) return { ignored: otherProject };

  if (event === "Merge Request Hook") return fromMergeRequest(payload, project);
  return fromPush(event, payload, project);
}

/**
 * When the project is linked to a GitLab project, a payload for another one is ignored (a
 * webhook secret shared or copied between projects must not deploy the wrong repository).
 */
function checkGitlabProject(payload: unknown, project: ProjectRecord): string | undefined {
  const linked = project.gitlab?.projectId;
  if (linked === undefined) return undefined;
  const parsed = z.object({ project: projectSchema }).safeParse(payload);
  if (!parsed.success) return "malformed payload: project.id is missing or not a number";
  if (parsed.data.project.id !== linked) {
    return `payload is for GitLab project ${parsed.data.project.id}, not ${linked}`;
  }
  return undefined;
}

function fromPush(event: string, payload: unknown, project: ProjectRecord): IntentsResult {
  const parsed = pushSchema.safeParse(payload);
  if (!parsed.success) return { ignored: malformed(parsed.error) };
  const push = parsed.data;

  const isTagEvent = event === "Tag Push Hook";
  if ((push.object_kind === "tag_push") !== isTagEvent) {
    return { ignored: `malformed payload: object_kind '${push.object_kind}' in a '${event}'` };
  }
  const prefix = isTagEvent ? "refs/tags/" : "refs/heads/";
  if (!push.ref.startsWith(prefix)) {
    return { ignored: `malformed payload: ref '${clip(push.ref)}' is not under ${prefix}` };
  }
  const name = push.ref.slice(prefix.length);
  if (!isValidRefName(name)) {
    return { ignored: `malformed payload: '${clip(name)}' is not a valid ref name` };
  }
  const ref: IntentRef = { type: isTagEvent ? "tag" : "branch", name };

  if (isTagEvent) {
    if (!project.autoDeploy.tags) return { ignored: `tag '${name}': autoDeploy.tags is off` };
  } else if (!branchMatches(name, project.autoDeploy.branches)) {
    // Deletions are gated by the globs too: only a branch that matches them can have a version
    // that webhooks created. A version made by hand for another branch is its owner's to delete.
    return { ignored: `branch '${name}' does not match autoDeploy.branches` };
  }

  const versionName = versionNameForRef(ref);
  const what = `${ref.type} '${name}'`;
  if (push.after === ZERO_SHA) {
    return { intents: [{ action: "delete", ref, versionName }] };
  }
  if (!push.checkout_sha) {
    // E.g. a tag pointing at a tree or blob: there is no commit to check out.
    return { ignored: `${what} points at no commit (checkout_sha is empty)` };
  }
  return { intents: [{ action: "on", ref, sha: push.checkout_sha, versionName }] };
}

function fromMergeRequest(payload: unknown, project: ProjectRecord): IntentsResult {
  const parsed = mergeRequestSchema.safeParse(payload);
  if (!parsed.success) return { ignored: malformed(parsed.error) };
  const mr = parsed.data.object_attributes;
  const label = `merge request !${mr.iid}`;
  if (!project.autoDeploy.mergeRequests) {
    return { ignored: `${label}: autoDeploy.mergeRequests is off` };
  }

  const ref: IntentRef = { type: "mergeRequest", name: String(mr.iid) };
  const versionName = versionNameForRef(ref);
  const action = mr.action ?? "";

  if (action === "close" || action === "merge") {
    return { intents: [{ action: "delete", ref, versionName }] };
  }

  const deploys = action === "open" || action === "reopen" || action === "update";
  if (!deploys) return { ignored: `merge request action '${clip(action)}' is not acted on` };
  if (action === "update" && !mr.oldrev) {
    // Title edits, labels, approvals, draft toggles... arrive as `update` without `oldrev`.
    return { ignored: "merge request update without new commits" };
  }
  if (mr.state !== undefined && mr.state !== "opened") {
    return { ignored: `${label} is ${clip(mr.state)}` };
  }
  if (
    mr.source_project_id !== undefined &&
    mr.target_project_id !== undefined &&
    mr.source_project_id !== mr.target_project_id
  ) {
    // Security: anyone who can fork can open a merge request, and deploying it runs their
    // compose file on this host (host mounts, the Docker socket...). Branch pushes already need
    // push access to the repository, so only same-project merge requests deploy by themselves;
    // a fork's can still be deployed by hand through the API.
    return { ignored: `${label} comes from a fork (project ${mr.source_project_id})` };
  }
  if (!mr.last_commit)
    return { ignored: "malformed payload: object_attributes.last_commit is missing" };
  // The source branch is kept for GitLab's deployments (docs/gitlab.md); a name git would refuse
  // is dropped, and the version then gets a commit status only.
  const on: IntentRef =
    mr.source_branch !== undefined && isValidRefName(mr.source_branch)
      ? { ...ref, sourceBranch: mr.source_branch }
      : ref;
  return { intents: [{ action: "on", ref: on, sha: mr.last_commit.id, versionName }] };
}

/**
 * Branch globs follow GitLab's own wildcard rule (Gitlab::RefMatcher, used for protected
 * branches and push_events_branch_filter): `*` matches any run of characters *including* `/`.
 * A user writing `*` expects every branch, `feature/x` included, and GitLab users already write
 * `*-stable` for `team/1-0-stable`; `release/*` matches `release/1.0` and `release/1.0/hotfix`.
 * picomatch's `bash: true` gives exactly that (single stars behave as globstars), while `?`,
 * `{a,b}` and `[abc]` keep their usual meaning. An entry starting with `!` excludes: a branch
 * deploys when it matches at least one plain entry (or there are none) and no `!` entry.
 */
type Matcher = (branch: string) => boolean;

// Compiled globs, kept: every push compiles the same few globs of its project otherwise. Bounded,
// in case projects' globs are edited many times over a long run.
const matchers = new Map<string, Matcher>();
const MAX_KEPT_MATCHERS = 1_000;

function globMatcher(glob: string): Matcher {
  let matcher = matchers.get(glob);
  if (!matcher) {
    try {
      matcher = picomatch(glob, { bash: true, dot: true });
    } catch {
      // An unparseable glob matches nothing rather than failing the whole delivery.
      matcher = () => false;
    }
    if (matchers.size >= MAX_KEPT_MATCHERS) matchers.clear();
    matchers.set(glob, matcher);
  }
  return matcher;
}

export function branchMatches(branch: string, globs: readonly string[]): boolean {
  const include = globs.filter((g) => !g.startsWith("!"));
  const exclude = globs.filter((g) => g.startsWith("!")).map((g) => g.slice(1));
  if (include.length === 0 && exclude.length === 0) return false;
  const matches = (glob: string): boolean => globMatcher(glob)(branch);
  return (include.length === 0 || include.some(matches)) && !exclude.some(matches);
}

function malformed(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "malformed payload";
  const path = issue.path.map(String).join(".") || "(root)";
  return `malformed payload: ${path}: ${issue.message}`;
}

/** Payload text echoed into a reason stays short (reasons are stored and shown). */
function clip(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}
