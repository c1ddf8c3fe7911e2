// The rules of dockbot's project hook and deploy key on GitLab (docs/gitlab.md, "Onboarding:
// the project hook and the deploy key"). Pure: what the hook must look like, how a hook GitLab
// returns differs from it, when GitLab disabled it and what to do then.
import type { GitlabItem } from "../store/types.js";

/** Every event flag of a project hook, set explicitly (GitLab's column defaults vary). */
export function desiredHookFlags(url: string): Record<string, boolean | string> {
  return {
    push_events: true,
    push_events_branch_filter: "",
    tag_push_events: true,
    merge_requests_events: true,
    issues_events: false,
    confidential_issues_events: false,
    note_events: false,
    confidential_note_events: false,
    job_events: false,
    pipeline_events: false,
    wiki_page_events: false,
    deployment_events: false,
    releases_events: false,
    milestone_events: false,
    emoji_events: false,
    feature_flag_events: false,
    resource_access_token_events: false,
    vulnerability_events: false,
    repository_update_events: false,
    enable_ssl_verification: /^https:/i.test(url),
  };
}

/** The flags as gitbeaker's camelCase options (it sends them snake_case). */
export function hookOptions(url: string, token: string): Record<string, unknown> {
  const out: Record<string, unknown> = { token };
  for (const [key, value] of Object.entries(desiredHookFlags(url))) {
    out[key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return out;
}

/** The flags of `hook` that differ from dockbot's (a flag GitLab does not return is skipped). */
export function hookDifferences(hook: Record<string, unknown>, url: string): string[] {
  return Object.entries(desiredHookFlags(url))
    .filter(([key, value]) => key in hook && (hook[key] ?? "") !== value)
    .map(([key]) => key);
}

/** GitLab turned the hook off after failed deliveries (docs/gitlab.md, "Auto-disabled"). */
export function hookDisabled(hook: Record<string, unknown>, now = Date.now()): boolean {
  const alert = typeof hook.alert_status === "string" ? hook.alert_status : "executable";
  const until = typeof hook.disabled_until === "string" ? Date.parse(hook.disabled_until) : NaN;
  return alert !== "executable" || (!Number.isNaN(until) && until > now);
}

export function disabledAdvice(hook: Record<string, unknown>, url: string): string {
  const alert = typeof hook.alert_status === "string" ? hook.alert_status : "disabled";
  const until = typeof hook.disabled_until === "string" ? `, until ${hook.disabled_until}` : "";
  return (
    `GitLab disabled this hook after failed deliveries (alert_status ${alert}${until}). ` +
    `Check that GitLab can reach ${url} and that dockbot answers it, then re-enable the hook in ` +
    `the GitLab project's Settings > Webhooks (send a test event that gets a 2xx).`
  );
}

/** `{id}` when there is one (records leave an unknown id out; the API shows null). */
export function idOf(id: number | undefined): { id?: number } {
  return id === undefined ? {} : { id };
}

/** A failure without an HTTP status: GitLab was not reached (network, timeout). */
export function unreachable(item: GitlabItem): boolean {
  return item.status === "failed" && item.error !== undefined && !item.error.startsWith("HTTP ");
}

/** `ssh-ed25519 AAAA... comment` and the same key with another comment are one key. */
export function keyBody(key: string): string {
  return key.trim().split(/\s+/).slice(0, 2).join(" ");
}
