// The text of the one note dockbot keeps on a merge request (docs/gitlab.md, "The merge request
// note"). Pure. The hidden marker names the version, so the note is found again after a restart
// of dockbot or a retry whose answer was lost, and never written twice.

/** The marker a note of dockbot carries for a version (an HTML comment GitLab does not show). */
export function noteMarker(versionId: string): string {
  return `<!-- dockbot:version:${versionId} -->`;
}

export function hasNoteMarker(body: string, versionId: string): boolean {
  return body.includes(noteMarker(versionId));
}

export interface NoteFacts {
  versionId: string;
  versionName: string;
  /** The preview URL, when the version has one. */
  url?: string | undefined;
  state: "deploying" | "running" | "failed" | "canceled" | "removed";
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
  lines.push("", noteMarker(facts.versionId), "");
  return lines.join("\n");
}

/** Keeps error texts from turning into markup (links, HTML, tables) in GitLab's rendering. */
function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`);
}
