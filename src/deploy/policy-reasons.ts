// Why dockbot itself ran an operation (trigger `{source: "policy", reason}`, docs/api.md
// "Resources"): the reasons it gives and the one sentence each is told with, in the operation's
// log and on the dashboard.
import type { OperationTrigger } from "../store/types.js";

const REASON_TEXT: Record<string, string> = {
  idle: "nobody used it (no deploy and no preview request) for the project's idle time (autoStop.idleHours)",
  limit:
    "the running limit needed room for another version (DOCKBOT_MAX_RUNNING or the project's maxRunning)",
};

/** The sentence for a policy trigger's reason, e.g. "nobody used it ... (autoStop.idleHours)". */
export function policyReasonText(reason: string | undefined): string {
  return (reason !== undefined ? REASON_TEXT[reason] : undefined) ?? reason ?? "dockbot's policy";
}

/** How a trigger is named in one line: `webhook (Push Hook)`, `policy (idle)`. */
export function triggerLabel(trigger: OperationTrigger): string {
  const detail = trigger.source === "policy" ? trigger.reason : trigger.event;
  return detail ? `${trigger.source} (${detail})` : trigger.source;
}
