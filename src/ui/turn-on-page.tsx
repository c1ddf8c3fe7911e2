// The page the preview router's "Turn on" button opens (docs/api.md, "Idle stop and limits"): the
// preview host never carries the dashboard's cookie, so the button is a link here, and turning
// the version on is one signed-in POST from this page to the existing
// `/projects/:project/versions/:version/on` (CSRF token, same-origin rule, Developer right).
import type { FC } from "hono/jsx";
import { CsrfField, Layout, StateBadge } from "./components.js";
import { policyReasonText } from "../deploy/policy-reasons.js";
import type { OperationRecord, ProjectRecord, VersionRecord } from "../store/types.js";

const enc = encodeURIComponent;

function when(iso: string | undefined): string {
  return iso === undefined ? "" : ` on ${iso.slice(0, 16).replace("T", " ")} UTC`;
}

/** Why the version is off, in one sentence (the same facts as the preview page's). */
function whyOff(version: VersionRecord, last: OperationRecord | undefined): string {
  if (version.state === "running") return "It is running.";
  if (version.state === "failed") return `Its last ${last?.kind ?? "operation"} failed.`;
  if (last?.kind === "down" && last.status === "succeeded") {
    if (last.trigger.source === "policy" && last.trigger.reason === "idle") {
      return `dockbot stopped it${when(last.finishedAt)} because nobody used it (no deploy and no preview request) for its idle time.`;
    }
    if (last.trigger.source === "policy") {
      return `dockbot stopped it${when(last.finishedAt)}: ${policyReasonText(last.trigger.reason)}.`;
    }
    return `It was turned off${when(last.finishedAt)}.`;
  }
  return `It is ${version.state}.`;
}

export const TurnOnPage: FC<{
  csrf: string;
  project: ProjectRecord;
  version: VersionRecord;
  last?: OperationRecord | undefined;
  /** Whether this person may turn it on (Developers; src/auth decides). */
  mayDeploy: boolean;
}> = (p) => {
  const projectPath = `/projects/${enc(p.project.name)}`;
  const versionPath = `${projectPath}/versions/${enc(p.version.name)}`;
  const startable = p.version.state === "off" || p.version.state === "failed";
  return (
    <Layout title={`Turn on ${p.version.name}`} csrf={p.csrf}>
      <p class="crumbs">
        <a href="/">Projects</a> / <a href={projectPath}>{p.project.name}</a> / {p.version.name}
      </p>
      <section class="card narrow">
        <h1>Turn on {p.version.name}?</h1>
        <p>
          Version <strong>{p.version.name}</strong> of <strong>{p.project.name}</strong> is{" "}
          <StateBadge state={p.version.state} versionId={p.version.id} />.{" "}
          {whyOff(p.version, p.last)}
        </p>
        {!startable ? (
          <p>
            There is nothing to turn on now. <a href={projectPath}>Back to {p.project.name}</a>
          </p>
        ) : p.mayDeploy ? (
          <form method="post" action={`${versionPath}/on`}>
            <CsrfField csrf={p.csrf} />
            <p>
              This deploys its {p.version.ref.type} <code>{p.version.ref.name}</code> again; its
              volumes and their data are as they were left.
            </p>
            <div class="row">
              <button type="submit" class="primary">
                Turn on {p.version.name}
              </button>
              <a class="button" href={projectPath}>
                Cancel
              </a>
            </div>
          </form>
        ) : (
          <p>
            Turning it on needs the Developer role on the project's GitLab project. Ask someone who
            has it, or <a href={projectPath}>go to {p.project.name}</a>.
          </p>
        )}
      </section>
    </Layout>
  );
};
