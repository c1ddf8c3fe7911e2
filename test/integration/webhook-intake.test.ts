// The webhook receiver's bookkeeping, in process over both stores: a delivery is stored once with
// the ids of the operations it queued, a repeat is a duplicate, and a delivery that could not be
// acted on gives its key back so GitLab's retry is taken.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/store/store.js";
import { startApiHarness, type ApiHarness, type StoreKind } from "../support/api-harness.js";
import { checkMongo } from "../support/mongo.js";
import { describeWithServices, type ServiceCheck } from "../support/services.js";

const stores: Array<[StoreKind, ServiceCheck[]]> = [
  ["sqlite", []],
  ["mongodb", [await checkMongo()]],
];

const push = readFileSync(
  path.resolve(import.meta.dirname, "../fixtures/gitlab/push.json"),
  "utf8",
);

interface DeliveryJson {
  id: string;
  event: string;
  outcome: string;
  reason?: string;
  operationIds: string[];
}

for (const [kind, checks] of stores) {
  describeWithServices(checks, `webhook intake over ${kind}`, () => {
    let h: ApiHarness;
    let secret: string;

    beforeEach(async () => {
      h = await startApiHarness(kind);
      const res = await h.call("POST", "/api/projects", {
        name: "shop",
        repoUrl: "ssh://git@127.0.0.1:2222/srv/git/shop.git",
      });
      expect(res.status).toBe(201);
      secret = ((await res.json()) as { webhookSecret: string }).webhookSecret;
    });
    afterEach(async () => {
      await h.close();
    });

    const deliver = (uuid: string) =>
      h.app.request("/webhooks/gitlab", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-gitlab-token": secret,
          "x-gitlab-event": "Push Hook",
          "x-gitlab-event-uuid": uuid,
        },
        body: push,
      });

    const deliveries = async () =>
      (await (await h.call("GET", "/api/projects/shop/deliveries")).json()) as DeliveryJson[];

    it("stores a delivery once, with the ids of the operations it queued", async () => {
      const res = await deliver("uuid-1");
      expect(res.status).toBe(202);
      const { operations } = (await res.json()) as { operations: string[] };
      expect(operations).toHaveLength(1);
      const [delivery] = await deliveries();
      expect(delivery).toMatchObject({
        event: "Push Hook",
        outcome: "accepted",
        operationIds: operations,
      });
      const op = (await (await h.call("GET", `/api/operations/${operations[0]}`)).json()) as {
        kind: string;
        status: string;
        trigger: { deliveryId: string };
      };
      expect(op).toMatchObject({
        kind: "up",
        status: "queued",
        trigger: { deliveryId: delivery?.id },
      });

      const repeat = await deliver("uuid-1");
      expect(repeat.status).toBe(200);
      expect(await repeat.json()).toEqual({ duplicate: true });
      expect((await deliveries()).map((d) => d.outcome)).toEqual(["duplicate", "accepted"]);
    });

    it("gives the key back when the operations could not be queued, so GitLab's retry is taken", async () => {
      // The store drops out between storing the delivery and queueing its operation, once.
      const real = h.service.requestOperation.bind(h.service);
      let failures = 1;
      h.service.requestOperation = (...args) => {
        if (failures-- > 0) {
          return Promise.reject(new StoreUnavailableError("store went away"));
        }
        return real(...args);
      };

      const failed = await deliver("uuid-2");
      expect(failed.status).toBe(503);
      const [marked] = await deliveries();
      expect(marked).toMatchObject({
        outcome: "ignored",
        reason: "failed: store went away",
        operationIds: [],
      });

      const retry = await deliver("uuid-2");
      expect(retry.status).toBe(202);
      const { operations } = (await retry.json()) as { operations: string[] };
      expect((await h.call("GET", `/api/operations/${operations[0]}`)).status).toBe(200);
      expect((await deliveries()).map((d) => d.outcome)).toEqual(["accepted", "ignored"]);

      const again = await deliver("uuid-2");
      expect(await again.json()).toEqual({ duplicate: true });
    });
  });
}
