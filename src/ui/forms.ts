// Form fields (application/x-www-form-urlencoded) to the DeployService's inputs. Pure: the
// service still validates every rule; this only turns text fields into values, with messages a
// person can act on.
import type { ProjectInput, ProjectPatchInput } from "../deploy/deploy-service.js";
import type { ProjectRecord } from "../store/types.js";
import { ENV_NAME_PATTERN } from "../deploy/input-rules.js";

export type FormFields = Record<string, string | File | (string | File)[]>;

export class FormError extends Error {
  override readonly name = "FormError";
}

export function field(form: FormFields, name: string): string {
  const value = form[name];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === "string" ? first.trim() : "";
}

export function fields(form: FormFields, name: string): string[] {
  const value = form[name];
  const all = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return all.filter((v): v is string => typeof v === "string");
}

const checked = (form: FormFields, name: string) => field(form, name) !== "";

/** `NAME=value` lines; blank lines and `#` comments skipped. Values are never put in messages. */
export function parseEnvLines(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  lines.forEach((line, index) => {
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const eq = line.indexOf("=");
    const name = eq < 0 ? "" : line.slice(0, eq).trim();
    if (!ENV_NAME_PATTERN.test(name)) {
      throw new FormError(
        `Environment line ${index + 1} is not NAME=value (names are letters, digits and _, not starting with a digit)`,
      );
    }
    env[name] = line.slice(eq + 1);
  });
  return env;
}

export function parseBranchGlobs(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function parseGitlab(form: FormFields): ProjectInput["gitlab"] {
  const idText = field(form, "gitlabProjectId");
  const url = field(form, "gitlabUrl").replace(/\/+$/, "");
  if (idText === "" && url === "") return undefined;
  const projectId = Number(idText);
  if (!/^\d+$/.test(idText) || !Number.isSafeInteger(projectId) || projectId <= 0) {
    throw new FormError("GitLab project ID must be the number GitLab shows on the project's page");
  }
  if (url !== "") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new FormError(
        "GitLab project URL must be a full URL such as https://gitlab.example.com/team/shop",
      );
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
      throw new FormError("GitLab project URL must start with https:// or http://");
    }
  }
  return url === "" ? { projectId } : { projectId, url };
}

/** The create form. */
export function projectInputFromForm(form: FormFields): ProjectInput {
  const input: ProjectInput = {
    name: field(form, "name"),
    repoUrl: field(form, "repoUrl"),
    autoDeploy: {
      branches: parseBranchGlobs(field(form, "branches")),
      tags: checked(form, "tags"),
      mergeRequests: checked(form, "mergeRequests"),
    },
    env: parseEnvLines(fields(form, "env").join("\n")),
  };
  const composeFile = field(form, "composeFile");
  if (composeFile !== "") input.composeFile = composeFile;
  const gitlab = parseGitlab(form);
  if (gitlab !== undefined) input.gitlab = gitlab;
  return input;
}

/**
 * The edit form. Env values are write-only: kept unless the name is ticked for removal; lines
 * typed in the box add a name or replace its value.
 */
export function projectPatchFromForm(form: FormFields, current: ProjectRecord): ProjectPatchInput {
  const created = projectInputFromForm(form);
  const env = { ...current.env };
  for (const name of fields(form, "removeEnv")) delete env[name];
  Object.assign(env, created.env);
  const patch: ProjectPatchInput = {
    name: created.name,
    repoUrl: created.repoUrl,
    autoDeploy: created.autoDeploy,
    env,
  };
  // The service keeps a value it is not given; an emptied field means "unchanged" here.
  if (created.composeFile !== undefined) patch.composeFile = created.composeFile;
  if (created.gitlab !== undefined) patch.gitlab = created.gitlab;
  return patch;
}

export { safeNext } from "../auth/safe-next.js";
