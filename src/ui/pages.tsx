// The dashboard's pages. Each takes plain records and renders a whole document; routes decide
// what to load. Secrets: env values are never passed in (names only); the webhook secret is
// passed only to the project page.
import type { Child, FC } from "hono/jsx";
import { historyOf, previousDeploy } from "../deploy/deploy-history.js";
import { policyReasonText, triggerLabel } from "../deploy/policy-reasons.js";
import { versionPreviewUrl, type PreviewSettings } from "../preview/preview-host.js";
import {
  Age,
  Copyable,
  CsrfField,
  ErrorBox,
  KIND_LABEL,
  LastOperation,
  Layout,
  Notice,
  PostButton,
  Sha,
  StateBadge,
  StatusBadge,
} from "./components.js";
import { GitlabReports } from "./gitlab-panel.js";
import type { VersionDiskUse } from "../deploy/disk-usage.js";
import type {
  DeliveryRecord,
  LogLine,
  OperationRecord,
  ProjectRecord,
  VersionRecord,
} from "../store/types.js";

export interface VersionRow {
  version: VersionRecord;
  last?: OperationRecord | undefined;
  /** Its disk use as last measured in the background (src/deploy/disk-usage.ts). */
  disk?: VersionDiskUse | undefined;
}

const enc = encodeURIComponent;
const projectPath = (p: ProjectRecord) => `/projects/${enc(p.name)}`;
const versionPath = (p: ProjectRecord, v: VersionRecord) =>
  `${projectPath(p)}/versions/${enc(v.name)}`;
const ACTIVE = new Set(["queued", "running"]);

// ------------------------------------------------------------------------------------ login

/**
 * A browser following a link from another site (a GitLab commit status) does not send the
 * SameSite=Strict cookie, so a signed-in user would land on the sign-in form. This page reloads
 * /login from dockbot itself, where the cookie is sent; signed-in users then go straight on.
 */
export const SameSiteHopPage: FC<{ url: string }> = ({ url }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta http-equiv="refresh" content={`0;url=${url}`} />
      <title>dockbot</title>
    </head>
    <body>
      <p>
        <a href={url}>Continue to dockbot</a>
      </p>
    </body>
  </html>
);

// ------------------------------------------------------------------------------------ dashboard

export interface DashboardProps {
  csrf: string;
  /** Whether the person may add projects (admins; src/auth decides). Unset: yes. */
  mayCreate?: boolean | undefined;
  sshKey: { publicKey: string; fingerprint: string };
  projects: Array<{ project: ProjectRecord; versions: VersionRecord[] }>;
  notice?: string | undefined;
}

export const DashboardPage: FC<DashboardProps> = (p) => (
  <Layout title="Projects" csrf={p.csrf} live liveScope="{}">
    <Notice text={p.notice} />
    <div class="heading">
      <h1>Projects</h1>
      {p.mayCreate !== false && (
        <a class="button primary" href="/new-project">
          New project
        </a>
      )}
    </div>
    {p.projects.length === 0 ? (
      <p class="card muted">
        No projects yet. Add the deploy key below to your GitLab project, then create it here.
      </p>
    ) : (
      <ul class="projects">
        {p.projects.map(({ project, versions }) => (
          <li class="card">
            <h2>
              <a href={projectPath(project)}>{project.name}</a>
            </h2>
            <p class="muted repo">{project.repoUrl}</p>
            {versions.length === 0 ? (
              <p class="muted">No versions.</p>
            ) : (
              <ul class="chips">
                {versions.map((v) => (
                  <li>
                    <a href={`${versionPath(project, v)}/view`}>{v.name}</a>{" "}
                    <StateBadge state={v.state} versionId={v.id} />
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
    )}
    <section class="card" id="deploy-key">
      <h2>Deploy key</h2>
      <p>
        dockbot clones over SSH with this key. In GitLab, add it to each project under{" "}
        <strong>Settings → Repository → Deploy keys</strong> (read access is enough).
      </p>
      <Copyable id="ssh-public-key" value={p.sshKey.publicKey} block />
      <p class="muted">
        Fingerprint: <code>{p.sshKey.fingerprint}</code>
      </p>
    </section>
  </Layout>
);

// ------------------------------------------------------------------------------------ project form

export interface ProjectFormValues {
  name: string;
  repoUrl: string;
  composeFile: string;
  branches: string;
  tags: boolean;
  mergeRequests: boolean;
  gitlabProjectId: string;
  gitlabUrl: string;
}

export function formValuesOf(project?: ProjectRecord): ProjectFormValues {
  return {
    name: project?.name ?? "",
    repoUrl: project?.repoUrl ?? "",
    composeFile: project?.composeFile ?? "",
    branches: (project?.autoDeploy.branches ?? ["*"]).join(", "),
    tags: project?.autoDeploy.tags ?? true,
    mergeRequests: project?.autoDeploy.mergeRequests ?? true,
    gitlabProjectId: project?.gitlab ? String(project.gitlab.projectId) : "",
    gitlabUrl: project?.gitlab?.url ?? "",
  };
}

export interface ProjectFormProps {
  csrf: string;
  /** Editing this project; creating one when unset. */
  project?: ProjectRecord | undefined;
  values: ProjectFormValues;
  error?: string | undefined;
  /** The GitLab repository picker (gitlab-panel.tsx), on the new-project page. */
  picker?: Child;
}

export const ProjectFormPage: FC<ProjectFormProps> = (p) => {
  const editing = p.project;
  const envNames = editing ? Object.keys(editing.env).sort() : [];
  const v = p.values;
  return (
    <Layout title={editing ? `Edit ${editing.name}` : "New project"} csrf={p.csrf}>
      <p class="crumbs">
        <a href="/">Projects</a>
        {editing && (
          <>
            {" / "}
            <a href={projectPath(editing)}>{editing.name}</a>
          </>
        )}
      </p>
      <h1>{editing ? `Edit ${editing.name}` : "New project"}</h1>
      <ErrorBox text={p.error} />
      {!editing && p.picker}
      <form method="post" action={editing ? projectPath(editing) : "/projects"} class="card form">
        <CsrfField csrf={p.csrf} />
        <label for="name">Name</label>
        <input
          id="name"
          name="name"
          value={v.name}
          required
          pattern="[a-z0-9][a-z0-9\-]{0,62}"
          autocomplete="off"
        />
        <p class="hint">Lowercase letters, digits and dashes; used in container names.</p>

        <label for="repoUrl">Repository</label>
        <input
          id="repoUrl"
          name="repoUrl"
          value={v.repoUrl}
          required
          placeholder="git@gitlab.example.com:team/shop.git"
          autocomplete="off"
          spellcheck={false}
        />
        <p class="hint">SSH URL (uses the deploy key), or https for a public repository.</p>

        <label for="composeFile">Compose file</label>
        <input
          id="composeFile"
          name="composeFile"
          value={v.composeFile}
          placeholder="compose.yaml"
          spellcheck={false}
        />
        <p class="hint">
          Empty: the first of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml.
          {editing && " A value set before stays when the field is emptied."}
        </p>

        <fieldset>
          <legend>Deploy automatically (GitLab webhook)</legend>
          <label for="branches">Branches (globs, comma separated)</label>
          <input
            id="branches"
            name="branches"
            value={v.branches}
            placeholder="*, release/*"
            spellcheck={false}
          />
          <p class="hint">Empty: no branch is deployed on push.</p>
          <label class="check">
            <input type="checkbox" name="tags" value="on" checked={v.tags} /> Tags
          </label>
          <label class="check">
            <input type="checkbox" name="mergeRequests" value="on" checked={v.mergeRequests} />{" "}
            Merge requests
          </label>
        </fieldset>

        <fieldset>
          <legend>GitLab project (optional)</legend>
          <label for="gitlabProjectId">Project ID</label>
          <input
            id="gitlabProjectId"
            name="gitlabProjectId"
            value={v.gitlabProjectId}
            inputmode="numeric"
          />
          <label for="gitlabUrl">Project URL</label>
          <input
            id="gitlabUrl"
            name="gitlabUrl"
            value={v.gitlabUrl}
            placeholder="https://gitlab.example.com/team/shop"
            spellcheck={false}
          />
          <p class="hint">With the URL, commit hashes link to GitLab.</p>
        </fieldset>

        <fieldset>
          <legend>Environment</legend>
          {envNames.length > 0 && (
            <>
              <p class="hint">Values are write-only and never shown. Tick a name to remove it.</p>
              <ul class="env-names">
                {envNames.map((name) => (
                  <li>
                    <label class="check">
                      <input type="checkbox" name="removeEnv" value={name} /> <code>{name}</code>
                    </label>
                  </li>
                ))}
              </ul>
            </>
          )}
          <label for="env">
            {editing
              ? "Set values (NAME=value per line; replaces a value of the same name)"
              : "Values (NAME=value per line)"}
          </label>
          <textarea
            id="env"
            name="env"
            rows={4}
            spellcheck={false}
            autocomplete="off"
            placeholder="DATABASE_URL=postgres://…"
          ></textarea>
          {p.error && (
            <p class="hint">
              For safety, values typed before are not shown again: type them again if needed.
            </p>
          )}
        </fieldset>

        <button type="submit" class="primary">
          {editing ? "Save" : "Create project"}
        </button>
      </form>
    </Layout>
  );
};

// ------------------------------------------------------------------------------------ project page

export interface ProjectPageProps {
  csrf: string;
  /**
   * What the person may do here (src/auth decides; the server refuses the rest anyway): buttons
   * they may not use are left out, and the webhook secret is shown to Maintainers only. Unset:
   * everything.
   */
  may?: { deploy: boolean; maintain: boolean } | undefined;
  project: ProjectRecord;
  webhookUrl: string;
  versions: VersionRow[];
  deliveries: DeliveryRecord[];
  notice?: string | undefined;
  error?: string | undefined;
  refValue?: string | undefined;
  nameValue?: string | undefined;
  /** The preview router's settings (unset: off, no preview links). */
  preview?: PreviewSettings | undefined;
  /** The GitLab hook and deploy key panel (gitlab-panel.tsx). */
  gitlabPanel?: Child;
}

/** A deletion under way, or the reason it stopped (another DELETE of the project retries). */
const ProjectDeletionNote: FC<{ deletion: ProjectRecord["deletion"] }> = ({ deletion }) =>
  deletion === undefined ? null : deletion.state === "deleting" ? (
    <Notice
      text={`Being deleted (asked for at ${deletion.requestedAt}): every version is deleted, then the project.`}
    />
  ) : (
    <ErrorBox
      text={`Deleting this project failed: ${deletion.error ?? "no reason recorded"}. Another DELETE of the project (API) retries.`}
    />
  );

/** The version on the preview router (docs/api.md, "Preview router"). */
const PreviewLink: FC<{ url: string | null }> = ({ url }) =>
  url === null ? null : (
    <div class="small">
      preview:{" "}
      <a class="preview-link" href={url} rel="noreferrer noopener">
        {url}
      </a>
    </div>
  );

/** Bytes as the docker CLI prints them (decimal units), e.g. `12.3 MB`. */
function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit] ?? "B"}`;
}

/** A version's disk use: images, volumes and checkout (measured in the background). */
const DiskUse: FC<{ disk: VersionDiskUse | undefined }> = ({ disk }) =>
  disk === undefined ? (
    <div class="muted small disk-use">disk: not measured yet</div>
  ) : (
    <div
      class="muted small disk-use"
      title={`images ${formatBytes(disk.imagesBytes)}, volumes ${formatBytes(disk.volumesBytes)}, checkout ${formatBytes(disk.checkoutBytes)} (measured ${disk.measuredAt})`}
    >
      disk: {formatBytes(disk.totalBytes)}
    </div>
  );

export const ProjectPage: FC<ProjectPageProps> = (p) => {
  const { project } = p;
  const may = p.may ?? { deploy: true, maintain: true };
  return (
    <Layout
      title={project.name}
      csrf={p.csrf}
      live
      liveScope={JSON.stringify({ projectId: project.id })}
    >
      <p class="crumbs">
        <a href="/">Projects</a> / {project.name}
      </p>
      <div class="heading">
        <h1>{project.name}</h1>
        {may.maintain && (
          <a class="button" href={`${projectPath(project)}/edit`}>
            Edit project
          </a>
        )}
        {may.maintain && (
          <a class="button" href={`${projectPath(project)}/audit`}>
            Audit log
          </a>
        )}
      </div>
      <Notice text={p.notice} />
      <ErrorBox text={p.error} />
      <ProjectDeletionNote deletion={project.deletion} />
      <dl class="facts card">
        <dt>Repository</dt>
        <dd>
          <code>{project.repoUrl}</code>
        </dd>
        <dt>Compose file</dt>
        <dd>
          {project.composeFile ? (
            <code>{project.composeFile}</code>
          ) : (
            <span class="muted">default</span>
          )}
        </dd>
        <dt>Auto-deploy</dt>
        <dd>
          branches{" "}
          {project.autoDeploy.branches.length ? (
            <code>{project.autoDeploy.branches.join(", ")}</code>
          ) : (
            "none"
          )}
          {"; tags "}
          {project.autoDeploy.tags ? "yes" : "no"}
          {"; merge requests "}
          {project.autoDeploy.mergeRequests ? "yes" : "no"}
        </dd>
        <dt>Compose policy allows</dt>
        <dd class="policy">
          {project.policy?.allow.length ? (
            project.policy.allow.map((w) => <code class="policy-word">{w}</code>)
          ) : (
            <span class="muted">nothing beyond the defaults</span>
          )}
        </dd>
        <dt>Environment</dt>
        <dd>
          {Object.keys(project.env).length ? (
            Object.keys(project.env)
              .sort()
              .map((n) => <code class="env-name">{n}</code>)
          ) : (
            <span class="muted">none</span>
          )}
        </dd>
        {project.gitlab && (
          <>
            <dt>GitLab</dt>
            <dd>
              project {project.gitlab.projectId}
              {project.gitlab.url && (
                <>
                  {" · "}
                  <a href={project.gitlab.url} rel="noreferrer noopener">
                    {project.gitlab.url}
                  </a>
                </>
              )}
            </dd>
          </>
        )}
      </dl>

      <section class="card">
        <h2>Versions</h2>
        {p.versions.length === 0 ? (
          <p class="muted">
            No versions yet: add one from a branch, tag or commit below, or push to GitLab.
          </p>
        ) : (
          <div class="table-wrap">
            <table class="versions">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>SHA</th>
                  <th>State</th>
                  <th>Last operation</th>
                  <th>Actions</th>
                </tr>
              </thead>
              <tbody>
                {p.versions.map(({ version, last, disk }) => (
                  <tr data-version-row={version.id}>
                    <td data-label="Version">
                      <strong>{version.name}</strong>
                      <div class="muted small">
                        {version.ref.type === "mergeRequest"
                          ? `merge request !${version.ref.name}`
                          : `${version.ref.type} ${version.ref.name}`}
                      </div>
                      <PreviewLink url={versionPreviewUrl(p.preview, project.name, version)} />
                      {version.urls.map((u) => (
                        <div class="small">
                          <a href={u} rel="noreferrer noopener">
                            {u}
                          </a>
                        </div>
                      ))}
                    </td>
                    <td data-label="SHA">
                      <Sha sha={version.deployedSha ?? version.sha} project={project} />
                    </td>
                    <td data-label="State">
                      <StateBadge state={version.state} versionId={version.id} />
                      <DiskUse disk={disk} />
                    </td>
                    <td data-label="Last operation">
                      <LastOperation op={last} versionId={version.id} />
                    </td>
                    <td>
                      <div class="actions">
                        {may.deploy && (
                          <PostButton
                            action={`${versionPath(project, version)}/on`}
                            csrf={p.csrf}
                            label="Turn on"
                            kind="primary"
                          />
                        )}
                        {may.deploy && (
                          <PostButton
                            action={`${versionPath(project, version)}/off`}
                            csrf={p.csrf}
                            label="Turn off"
                          />
                        )}
                        {may.deploy && previousDeploy(historyOf(version)) !== undefined && (
                          <PostButton
                            action={`${versionPath(project, version)}/rollback`}
                            csrf={p.csrf}
                            label={`Roll back to ${previousDeploy(historyOf(version))?.sha.slice(0, 8) ?? ""}`}
                          />
                        )}
                        <a class="button" href={`${versionPath(project, version)}/view`}>
                          View
                        </a>
                        {may.maintain && (
                          <a class="button danger" href={`${versionPath(project, version)}/delete`}>
                            Delete
                          </a>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {may.deploy && (
          <form method="post" action={`${projectPath(project)}/versions`} class="add-version">
            <CsrfField csrf={p.csrf} />
            <h3>Add a version</h3>
            <div class="row">
              <label>
                Ref
                <input
                  name="ref"
                  value={p.refValue ?? ""}
                  required
                  placeholder="main, refs/tags/v1.2, or a commit hash"
                  spellcheck={false}
                />
              </label>
              <label>
                Name (optional)
                <input
                  name="name"
                  value={p.nameValue ?? ""}
                  placeholder="derived from the ref"
                  spellcheck={false}
                />
              </label>
              <button type="submit" class="primary">
                Add version
              </button>
            </div>
          </form>
        )}
      </section>

      {p.gitlabPanel}

      <section class="card">
        <h2>GitLab webhook</h2>
        <p>
          In GitLab: <strong>Settings → Webhooks → Add new webhook</strong>. Paste the URL and the
          secret token below, and tick <em>Push events</em>, <em>Tag push events</em> and{" "}
          <em>Merge request events</em>.
        </p>
        <label>URL</label>
        <Copyable id="webhook-url" value={p.webhookUrl} block />
        <details>
          <summary>Secret token (show)</summary>
          {may.maintain ? (
            <Copyable id="webhook-secret" value={project.webhookSecret} block />
          ) : (
            <p class="muted">Shown to the project's Maintainers.</p>
          )}
        </details>
      </section>

      <section class="card">
        <h2>Recent webhook deliveries</h2>
        {p.deliveries.length === 0 ? (
          <p class="muted">None received yet.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Received</th>
                  <th>Event</th>
                  <th>Outcome</th>
                  <th>Why</th>
                  <th>Operations</th>
                </tr>
              </thead>
              <tbody>
                {p.deliveries.map((d) => (
                  <tr>
                    <td>
                      <Age iso={d.receivedAt} />
                    </td>
                    <td>{d.event}</td>
                    <td>
                      <span class={`badge outcome-${d.outcome}`}>{d.outcome}</span>
                    </td>
                    <td>
                      {d.reason ??
                        (d.outcome === "accepted" ? "matched the auto-deploy settings" : "")}
                    </td>
                    <td>
                      {d.operationIds.map((id, i) => (
                        <>
                          {i > 0 && " "}
                          <a href={`/operations/${enc(id)}`}>{id.slice(0, 8)}</a>
                        </>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Layout>
  );
};

// ------------------------------------------------------------------------------------ delete

export const DeleteVersionPage: FC<{
  csrf: string;
  project: ProjectRecord;
  version: VersionRecord;
}> = (p) => (
  <Layout title={`Delete ${p.version.name}`} csrf={p.csrf}>
    <p class="crumbs">
      <a href="/">Projects</a> / <a href={projectPath(p.project)}>{p.project.name}</a> /{" "}
      {p.version.name}
    </p>
    <section class="card narrow">
      <h1>Delete version {p.version.name}?</h1>
      <p>
        This removes, for <strong>{p.version.name}</strong> of <strong>{p.project.name}</strong>{" "}
        (compose project <code>{p.version.composeProject}</code>):
      </p>
      <ul>
        <li>its containers</li>
        <li>the images built for it</li>
        <li>its networks</li>
        <li>its volumes, and the data in them (unless kept below)</li>
        <li>its checkout of the repository</li>
      </ul>
      <p>The version then disappears from the list. Its operation logs stay readable.</p>
      <form method="post" action={`${versionPath(p.project, p.version)}/delete`}>
        <CsrfField csrf={p.csrf} />
        <label class="check">
          <input type="checkbox" name="keepVolumes" value="on" /> Keep the volumes (their data stays
          on the Docker host)
        </label>
        <div class="row">
          <button type="submit" class="danger">
            Delete {p.version.name}
          </button>
          <a class="button" href={projectPath(p.project)}>
            Cancel
          </a>
        </div>
      </form>
    </section>
  </Layout>
);

// ------------------------------------------------------------------------------------ operation

export interface OperationPageProps {
  csrf: string;
  /** Whether the person may cancel (Developers; src/auth decides). Unset: yes. */
  mayCancel?: boolean | undefined;
  op: OperationRecord;
  lines: LogLine[];
  project?: ProjectRecord | undefined;
  version?: VersionRecord | undefined;
  history: OperationRecord[];
  notice?: string | undefined;
}

export const OperationPage: FC<OperationPageProps> = (p) => {
  const { op, project, version } = p;
  const lastSeq = p.lines.at(-1)?.seq ?? 0;
  const active = ACTIVE.has(op.status);
  return (
    <Layout title={`${KIND_LABEL[op.kind]} ${version?.name ?? ""}`} csrf={p.csrf} live>
      <p class="crumbs">
        <a href="/">Projects</a>
        {project && (
          <>
            {" / "}
            <a href={projectPath(project)}>{project.name}</a>
          </>
        )}
        {" / "}
        {version?.name ?? "deleted version"}
      </p>
      <Notice text={p.notice} />
      <section
        id="operation"
        class="card"
        data-operation-id={op.id}
        data-version-id={op.versionId}
        data-last-seq={String(lastSeq)}
        data-status={op.status}
      >
        <div class="heading">
          <h1>
            {KIND_LABEL[op.kind]} {version?.name ?? ""}
          </h1>
          {p.mayCancel !== false && (
            <form
              method="post"
              action={`/operations/${enc(op.id)}/cancel`}
              class="inline"
              id="cancel-form"
              hidden={!active}
            >
              <CsrfField csrf={p.csrf} />
              <button type="submit" class="danger">
                Cancel
              </button>
            </form>
          )}
        </div>
        <dl class="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={op.status} id="op-status" />{" "}
            <span id="live-note" class="muted small"></span>
          </dd>
          <dt>Version state</dt>
          <dd>
            {version ? (
              <StateBadge state={version.state} versionId={version.id} />
            ) : (
              <span class="muted">deleted</span>
            )}
          </dd>
          <dt>Commit</dt>
          <dd id="op-commit">
            {project ? (
              <Sha sha={op.sha} project={project} />
            ) : (
              <code>{op.sha?.slice(0, 8) ?? "–"}</code>
            )}
          </dd>
          <dt>Triggered by</dt>
          <dd>
            {triggerLabel(op.trigger)}
            {op.trigger.source === "policy" && (
              <span class="muted"> — {policyReasonText(op.trigger.reason)}</span>
            )}
          </dd>
          <dt>Queued</dt>
          <dd>
            <Age iso={op.queuedAt} />
          </dd>
          <dt>Finished</dt>
          <dd id="op-finished">
            {op.finishedAt ? <Age iso={op.finishedAt} /> : <span class="muted">–</span>}
          </dd>
          <dt>Error</dt>
          <dd id="op-error">{op.error ?? <span class="muted">none</span>}</dd>
        </dl>
        <GitlabReports reports={op.gitlabReports} />
        <h2>Log</h2>
        <pre id="log" class="log" aria-live="polite">
          {p.lines.length === 0 && (
            <span class="line system" id="log-empty">
              {active ? "Waiting for output…\n" : "No output.\n"}
            </span>
          )}
          {p.lines.map((l) => (
            <span class={`line ${l.stream}`} data-seq={String(l.seq)}>
              {`${l.text}\n`}
            </span>
          ))}
        </pre>
        <noscript>
          <p class="hint">Without JavaScript the log does not update by itself: reload the page.</p>
        </noscript>
      </section>

      <section class="card">
        <h2>History of {version?.name ?? "this version"}</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Operation</th>
                <th>Status</th>
                <th>Commit</th>
                <th>By</th>
                <th>Queued</th>
              </tr>
            </thead>
            <tbody>
              {p.history.map((h) => (
                <tr class={h.id === op.id ? "current" : ""}>
                  <td>
                    <a href={`/operations/${enc(h.id)}`}>{KIND_LABEL[h.kind]}</a>
                  </td>
                  <td data-history-status={h.id}>
                    <StatusBadge status={h.status} />
                  </td>
                  <td>
                    {project ? (
                      <Sha sha={h.sha} project={project} />
                    ) : (
                      <code>{h.sha?.slice(0, 8) ?? "–"}</code>
                    )}
                  </td>
                  <td>{triggerLabel(h.trigger)}</td>
                  <td>
                    <Age iso={h.queuedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </Layout>
  );
};

// ------------------------------------------------------------------------------------ errors

export const ErrorPage: FC<{ status: number; message: string; csrf?: string | undefined }> = (
  p,
) => (
  <Layout title={p.status === 404 ? "Not found" : "Error"} csrf={p.csrf}>
    <section class="card narrow">
      <h1>
        {p.status === 404 ? "Not found" : p.status === 403 ? "Refused" : "Something went wrong"}
      </h1>
      <ErrorBox text={p.message} />
      <p>
        <a href="/">Back to the projects</a>
      </p>
    </section>
  </Layout>
);
