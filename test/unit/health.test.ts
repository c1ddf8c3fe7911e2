import { describe, expect, it } from "vitest";
import {
  judgeHealth,
  RESTART_LIMIT,
  SETTLE_MS,
  type ContainerState,
  type HealthVerdict,
} from "../../src/deploy/health.js";

const NOW = 1_000_000;

function container(over: Partial<ContainerState> = {}): ContainerState {
  return {
    id: "c1",
    name: "p-web-1",
    service: "web",
    status: "running",
    exitCode: 0,
    restartCount: 0,
    startedAt: NOW - 60_000,
    ...over,
  };
}

function judge(
  containers: ContainerState[],
  o: { baseline?: Record<string, number>; final?: boolean } = {},
): HealthVerdict {
  return judgeHealth(containers, {
    now: NOW,
    baseline: new Map(Object.entries(o.baseline ?? {})),
    final: o.final ?? false,
  });
}

describe("judgeHealth", () => {
  const cases: Array<{
    name: string;
    containers: ContainerState[];
    baseline?: Record<string, number>;
    final?: boolean;
    kind: HealthVerdict["kind"];
    state?: RegExp;
  }> = [
    {
      name: "is healthy when a service without healthcheck has run past the settle window",
      containers: [container()],
      kind: "healthy",
    },
    {
      name: "waits while a service without healthcheck has just started",
      containers: [container({ startedAt: NOW - SETTLE_MS / 2 })],
      kind: "waiting",
      state: /^running for 1\.0 s$/,
    },
    {
      name: "counts a one-shot service that exited 0 as done",
      containers: [container({ status: "exited", exitCode: 0 })],
      kind: "healthy",
    },
    {
      name: "fails a service that exited with a non-zero code",
      containers: [
        container(),
        container({ id: "c2", service: "migrate", status: "exited", exitCode: 3 }),
      ],
      kind: "failed",
      state: /^exited with code 3$/,
    },
    {
      name: "fails a service that restarted RESTART_LIMIT times since the wait began",
      containers: [container({ restartCount: 5 + RESTART_LIMIT, exitCode: 1 })],
      baseline: { c1: 5 },
      kind: "failed",
      state: /^keeps restarting: 2 restarts during the health check, last exit code 1$/,
    },
    {
      name: "does not count restarts from before the wait began",
      containers: [container({ restartCount: 5 })],
      baseline: { c1: 5 },
      kind: "healthy",
    },
    {
      name: "waits while a container is between two restarts below the limit",
      containers: [container({ status: "restarting", restartCount: 1 })],
      baseline: { c1: 0 },
      kind: "waiting",
      state: /^restarting$/,
    },
    {
      name: "fails a container still restarting at the deadline",
      containers: [container({ status: "restarting", restartCount: 1 })],
      baseline: { c1: 0 },
      final: true,
      kind: "failed",
      state: /^restarting$/,
    },
    {
      name: "waits for a healthcheck that is starting",
      containers: [container({ health: "starting" })],
      kind: "waiting",
      state: /^starting$/,
    },
    {
      name: "keeps waiting on an unhealthy service before the deadline (a check may still pass)",
      containers: [container({ health: "unhealthy" })],
      kind: "waiting",
      state: /^unhealthy$/,
    },
    {
      name: "fails an unhealthy service at the deadline",
      containers: [container({ health: "unhealthy" })],
      final: true,
      kind: "failed",
      state: /^unhealthy$/,
    },
    {
      name: "is healthy when the healthcheck passed, even right after the start",
      containers: [container({ health: "healthy", startedAt: NOW - 10 })],
      kind: "healthy",
    },
    {
      name: "waits for a container that is created but not started (its dependency runs)",
      containers: [container({ status: "created", startedAt: 0 })],
      kind: "waiting",
      state: /^created$/,
    },
    {
      name: "fails a paused container",
      containers: [container({ status: "paused" })],
      kind: "failed",
      state: /^paused$/,
    },
    {
      name: "fails when the version has no containers at all",
      containers: [],
      kind: "failed",
      state: /no containers/,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const verdict = judge(c.containers, {
        ...(c.baseline === undefined ? {} : { baseline: c.baseline }),
        ...(c.final === undefined ? {} : { final: c.final }),
      });
      expect(verdict.kind).toBe(c.kind);
      if (c.state) {
        const problems =
          verdict.kind === "failed"
            ? verdict.failures
            : verdict.kind === "waiting"
              ? verdict.pending
              : [];
        expect(problems.map((p) => p.state).join("; ")).toMatch(c.state);
      }
    });
  }

  it("names every failing service, not only the first", () => {
    const verdict = judge([
      container({ status: "exited", exitCode: 2 }),
      container({ id: "c2", name: "p-api-1", service: "api", status: "dead", exitCode: 137 }),
    ]);
    expect(verdict).toEqual({
      kind: "failed",
      failures: [
        { service: "web", container: "p-web-1", containerId: "c1", state: "exited with code 2" },
        { service: "api", container: "p-api-1", containerId: "c2", state: "dead with code 137" },
      ],
    });
  });

  it("a failure wins over services still waiting", () => {
    const verdict = judge([
      container({ health: "starting" }),
      container({ id: "c2", service: "worker", status: "exited", exitCode: 1 }),
    ]);
    expect(verdict.kind).toBe("failed");
  });
});
