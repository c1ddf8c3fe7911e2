// The dashboard's GitLab pieces (docs/gitlab.md, "Onboarding"): the project page's hook and
// deploy key status with a "Repair" button, and the new-project page's repository picker.
// Both work with plain forms (JavaScript off).
import type { FC } from "hono/jsx";
import { CsrfField, ErrorBox } from "./components.js";
import type { GitlabProjectSummary } from "../gitlab/onboarding.js";
import type { GitlabItem, GitlabReport, ProjectRecord } from "../store/types.js";

const STATUS_TEXT: Record<GitlabItem["status"], string> = {
  created: "created",
  updated: "repaired",
  ok: "in place",
  disabled: "disabled by GitLab",
  failed: "not in place",
};

const ItemRow: FC<{ label: string; item: GitlabItem | undefined }> = ({ label, item }) => (
  <tr>
    <th scope="row">{label}</th>
    <td>
      {item ? (
        <span
          class={`badge ${item.status === "failed" || item.status === "disabled" ? "bad" : "good"}`}
        >
          {STATUS_TEXT[item.status]}
        </span>
      ) : (
        <span class="muted">not checked yet</span>
      )}
    </td>
    <td>{item?.id === null || item?.id === undefined ? "" : `#${item.id}`}</td>
    <td>{item?.error ?? ""}</td>
  </tr>
);

/** The project hook and deploy key on GitLab as last checked, and the button that repairs them. */
export const GitlabPanel: FC<{
  csrf: string;
  project: ProjectRecord;
  /** dockbot has DOCKBOT_GITLAB_URL and a token. */
  configured: boolean;
  /** The person may repair (Maintainers; src/auth decides). Unset: yes. */
  mayRepair?: boolean;
}> = ({ csrf, project, configured, mayRepair }) => {
  const status = project.gitlabStatus;
  return (
    <section class="card" id="gitlab">
      <h2>GitLab hook and deploy key</h2>
      {!project.gitlab ? (
        <p class="muted">
          Not linked to a GitLab project: set its GitLab project id (Edit) and dockbot adds the
          webhook and its deploy key by itself.
        </p>
      ) : !configured ? (
        <p class="muted">
          dockbot has no GitLab API access (DOCKBOT_GITLAB_URL and DOCKBOT_GITLAB_TOKEN): add the
          webhook below by hand.
        </p>
      ) : (
        <>
          <div class="table-wrap">
            <table>
              <tbody>
                <ItemRow label="Project hook" item={status?.hook} />
                <ItemRow label="Deploy key (read-only)" item={status?.deployKey} />
              </tbody>
            </table>
          </div>
          <p class="muted">
            GitLab project {project.gitlab.projectId}
            {status ? `, checked ${status.checkedAt}` : ""}
          </p>
          {mayRepair !== false && (
            <form
              method="post"
              action={`/projects/${encodeURIComponent(project.name)}/gitlab/sync`}
              class="inline"
            >
              <CsrfField csrf={csrf} />
              <button type="submit">Repair</button>
            </form>
          )}
        </>
      )}
    </section>
  );
};

/** Search GitLab for a repository and fill the new-project form from one. */
export const RepositoryPicker: FC<{
  search: string;
  results?: GitlabProjectSummary[] | undefined;
  error?: string | undefined;
}> = ({ search, results, error }) => (
  <section class="card" id="gitlab-picker">
    <h2>Pick a GitLab repository</h2>
    <form method="get" action="/new-project" class="inline">
      <input
        name="gitlabSearch"
        value={search}
        placeholder="name or path, e.g. team/shop"
        aria-label="Search GitLab projects"
      />
      <button type="submit">Search</button>
    </form>
    <ErrorBox text={error} />
    {results && results.length === 0 && <p class="muted">No GitLab project matches.</p>}
    {results && results.length > 0 && (
      <ul class="picker">
        {results.map((r) => {
          const name = (r.pathWithNamespace.split("/").at(-1) ?? "")
            .toLowerCase()
            .replace(/[^a-z0-9-]+/g, "-")
            .replace(/^-+|-+$/g, "")
            .slice(0, 63);
          const query = new URLSearchParams({
            gitlabProjectId: String(r.id),
            repoUrl: r.sshUrl,
            name,
          });
          return (
            <li>
              <a href={`/new-project?${query.toString()}`}>{r.pathWithNamespace}</a>{" "}
              <span class="muted">{r.sshUrl}</span>
            </li>
          );
        })}
      </ul>
    )}
  </section>
);

const KIND_TEXT: Record<NonNullable<GitlabReport["kind"]>, string> = {
  status: "commit status",
  environment: "environment",
  deployment: "deployment",
  note: "merge request note",
  stop: "environment stop",
};

/** What was posted to GitLab for an operation and how each call ended (`operation.gitlab`). */
export const GitlabReports: FC<{ reports: GitlabReport[] | undefined }> = ({ reports }) =>
  reports === undefined || reports.length === 0 ? null : (
    <details class="gitlab-reports" open={reports.some((r) => !r.ok)}>
      <summary>
        GitLab: {reports.filter((r) => r.ok).length} of {reports.length} calls done
      </summary>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>What</th>
              <th>State</th>
              <th>Outcome</th>
              <th>Tries</th>
              <th>At</th>
            </tr>
          </thead>
          <tbody>
            {reports.map((r) => (
              <tr>
                <td>{KIND_TEXT[r.kind ?? "status"]}</td>
                <td>{r.state}</td>
                <td>{r.ok ? "done" : (r.error ?? "failed")}</td>
                <td>{String(r.attempts)}</td>
                <td>{r.at}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
