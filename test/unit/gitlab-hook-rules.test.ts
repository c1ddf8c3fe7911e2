// The rules of dockbot's GitLab hook and of review apps (src/gitlab/hook-rules.ts,
// review-app-rules.ts), table-tested on hooks as GitLab's API returns them.
import { describe, expect, it } from "vitest";
import {
  desiredHookFlags,
  hookDifferences,
  hookDisabled,
  hookOptions,
  keyBody,
} from "../../src/gitlab/hook-rules.js";
import { deployRefOf, environmentName } from "../../src/gitlab/review-app-rules.js";
import type { VersionRecord } from "../../src/store/types.js";

const URL = "https://dockbot.example.com/webhooks/gitlab";
const asGitlabReturnsIt = (over: Record<string, unknown> = {}) => ({
  id: 1,
  url: URL,
  alert_status: "executable",
  disabled_until: null,
  ...desiredHookFlags(URL),
  ...over,
});

describe("dockbot's project hook", () => {
  it("wants push, tag push and merge request events only, and SSL verification for https", () => {
    const flags = desiredHookFlags(URL);
    const on = Object.entries(flags)
      .filter(([, v]) => v === true)
      .map(([k]) => k);
    expect(on.sort()).toEqual(
      ["enable_ssl_verification", "merge_requests_events", "push_events", "tag_push_events"].sort(),
    );
    expect(desiredHookFlags("http://10.0.0.5:3000/webhooks/gitlab").enable_ssl_verification).toBe(
      false,
    );
  });

  it("sends every flag in gitbeaker's camelCase with the secret as token", () => {
    const options = hookOptions(URL, "s3cret-value");
    expect(options).toMatchObject({
      token: "s3cret-value",
      pushEvents: true,
      mergeRequestsEvents: true,
      noteEvents: false,
      pushEventsBranchFilter: "",
      enableSslVerification: true,
    });
  });

  it.each([
    ["a hook as wanted", {}, []],
    ["pipeline events turned on by hand", { pipeline_events: true }, ["pipeline_events"]],
    ["a branch filter", { push_events_branch_filter: "main" }, ["push_events_branch_filter"]],
    ["SSL verification off", { enable_ssl_verification: false }, ["enable_ssl_verification"]],
  ] as const)("finds what differs in %s", (_name, over, expected) => {
    expect(hookDifferences(asGitlabReturnsIt(over), URL)).toEqual(expected);
  });

  it("skips flags an older GitLab does not return", () => {
    const hook = asGitlabReturnsIt();
    delete (hook as Record<string, unknown>).vulnerability_events;
    expect(hookDifferences(hook, URL)).toEqual([]);
  });

  it.each([
    ["executable", null, false],
    ["temporarily_disabled", null, true],
    ["disabled", null, true],
    ["executable", "2999-01-01T00:00:00Z", true],
    ["executable", "2000-01-01T00:00:00Z", false],
  ] as const)("counts alert_status %s until %s as disabled: %s", (alert, until, disabled) => {
    expect(hookDisabled(asGitlabReturnsIt({ alert_status: alert, disabled_until: until }))).toBe(
      disabled,
    );
  });

  it("compares deploy keys without their comment", () => {
    expect(keyBody("ssh-ed25519 AAAAC3Nza dockbot@host\n")).toBe(keyBody("ssh-ed25519 AAAAC3Nza"));
  });
});

describe("review-app refs", () => {
  const version = (ref: VersionRecord["ref"]) => ({ ref }) as VersionRecord;
  it.each([
    [
      { type: "branch", name: "feature/x" },
      { ref: "feature/x", tag: false },
    ],
    [
      { type: "tag", name: "v1.0" },
      { ref: "v1.0", tag: true },
    ],
    [
      { type: "mergeRequest", name: "7", sourceBranch: "topic" },
      { ref: "topic", tag: false },
    ],
    [{ type: "mergeRequest", name: "7" }, undefined],
    [{ type: "commit", name: "a".repeat(40) }, undefined],
  ] as const)("deploys %j on %j", (ref, expected) => {
    expect(deployRefOf(version(ref))).toEqual(expected);
  });

  it("names environments dockbot/<version>", () => {
    expect(environmentName("mr-7")).toBe("dockbot/mr-7");
  });
});
