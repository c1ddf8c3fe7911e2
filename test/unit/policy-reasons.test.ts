import { describe, expect, it } from "vitest";
import { policyReasonText, triggerLabel } from "../../src/deploy/policy-reasons.js";

describe("why dockbot itself ran an operation", () => {
  it("tells each reason it gives in a sentence naming the setting behind it", () => {
    expect(policyReasonText("idle")).toMatch(
      /no deploy and no preview request.*autoStop\.idleHours/,
    );
    expect(policyReasonText("limit")).toMatch(/DOCKBOT_MAX_RUNNING or the project's maxRunning/);
  });

  it("shows an unknown reason as it is, and a missing one as dockbot's policy", () => {
    expect(policyReasonText("disk")).toBe("disk");
    expect(policyReasonText(undefined)).toBe("dockbot's policy");
  });

  it("labels a trigger with its event, or a policy trigger with its reason", () => {
    expect(triggerLabel({ source: "webhook", event: "Push Hook" })).toBe("webhook (Push Hook)");
    expect(triggerLabel({ source: "policy", reason: "idle" })).toBe("policy (idle)");
    expect(triggerLabel({ source: "api" })).toBe("api");
  });
});
