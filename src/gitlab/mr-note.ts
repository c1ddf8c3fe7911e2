// The text of the one note dockbot keeps on a merge request (docs/gitlab.md, "The merge request
// note"). Pure. The hidden marker names the version (its project's id and its name, `mr-<iid>`),
// so the note is found again after a restart of dockbot, a retry whose answer was lost, or a
// reopened merge request (a new version of the same name), and never written twice.

/** The key of a version's note: stable across the version's records of one merge request. */
export function noteKey(projectId: string, versionName: string): string {
  return `${projectId}/${versionName}`;
}

/** The marker a note of dockbot carries (an HTML comment GitLab does not show). */
export function noteMarker(key: string): string {
  return `<!-- dockbot:version:${key} -->`;
}

export function hasNoteMarker(body: string, key: string): boolean {
  return body.includes(noteMarker(key));
}

export interface NoteFacts {
  /** noteKey(project id, version name). */
  key: string;
  versionName: string;
  /** The preview URL, when the version has one. */
  url?: string | undefined;
  /** `stopped`: turned off by dockbot itself (an idle stop: docs/api.md, "Idle stop"). */
  state: "deploying" | "running" | "failed" | "canceled" | "stopped" | "removed";
  sha?: string | undefined;
  /** Link to the operation's page with its log. */
  logUrl?: string | undefined;
  /** First line of the operation's error. */
  error?: string | undefined;
}

const STATE_TEXT: Record<NoteFacts["state"], string> = {
  deploying: "deploying",
  running: "running",
  failed: "failed",
  canceled: "canceled",
  stopped: "stopped by dockbot: nobody used it for a while (the preview link offers to turn it on)",
  removed: "removed",
};

export function mergeRequestNoteBody(facts: NoteFacts): string {
  const short = facts.sha ? `\`${facts.sha.slice(0, 8)}\`` : "unknown commit";
  const lines = [`### dockbot review app \`${facts.versionName}\``, ""];
  if (facts.state === "removed") {
    lines.push(
      "The preview of this merge request is gone: its version was removed (the merge request was merged or closed, or the version was deleted).",
      "",
      `- Last commit: ${short}`,
    );
  } else {
    lines.push(
      `- Preview: ${facts.url ? `[${escapeMarkdown(facts.url)}](${facts.url})` : "no published port yet"}`,
      `- State: **${STATE_TEXT[facts.state]}** at ${short}`,
    );
    if (facts.error) lines.push(`- Error: ${escapeMarkdown(facts.error)}`);
  }
  if (facts.logUrl) lines.push(`- Log: [${escapeMarkdown(facts.logUrl)}](${facts.logUrl})`);
  lines.push("", noteMarker(facts.key), "");
  return lines.join("\n");
}

/** Keeps error texts from turning into markup (links, HTML, tables) in GitLab's rendering. */
function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`);
}
