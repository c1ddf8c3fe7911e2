import { createRoute, z } from "@hono/zod-openapi";
import { stream } from "hono/streaming";
import { newRouter, type AppDeps } from "./app.js";
import {
  errorResponses,
  logText,
  OperationParams,
  OperationSchema,
  operationJson,
} from "./schemas.js";
import type { LogLine, OperationRecord } from "../store/types.js";
import { FINISHED_STATUSES } from "../store/types.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export function operationRoutes(deps: AppDeps) {
  const app = newRouter();
  const { service, store, bus } = deps;

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/operations/{id}",
      summary: "One operation, with its log",
      request: { params: OperationParams },
      responses: { 200: json(OperationSchema, "the operation"), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const op = await service.getOperation(c.req.valid("param").id);
      return c.json(operationJson(op, await store.getLogLines(op.id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/operations/{id}/log",
      summary: "The log as text/plain; ?follow=true streams until the operation ends",
      request: {
        params: OperationParams,
        query: z.object({ follow: z.enum(["true", "false"]).optional() }),
      },
      responses: {
        200: { description: "the log", content: { "text/plain": { schema: z.string() } } },
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const op = await service.getOperation(c.req.valid("param").id);
      c.header("Content-Type", "text/plain; charset=utf-8");
      if (c.req.valid("query").follow !== "true" || FINISHED_STATUSES.includes(op.status)) {
        // text/plain answers carry no JSON type for zod-openapi to check against.
        return c.body(logText(await store.getLogLines(op.id)), 200) as never;
      }
      c.header("Cache-Control", "no-store");
      c.header("X-Accel-Buffering", "no");
      const streamed = stream(c, async (out) => {
        // Subscribe before reading the store, so a line stored meanwhile is buffered, not lost;
        // then skip what the replay already wrote (seq <= last), so nothing repeats.
        const buffered: LogLine[] = [];
        let live = false;
        let last = 0;
        let resolveEnd: () => void = () => {};
        const ended = new Promise<void>((resolve) => (resolveEnd = resolve));
        const write = (lines: LogLine[]) => {
          const fresh = lines.filter((l) => l.seq > last);
          const lastLine = fresh.at(-1);
          if (!lastLine) return;
          last = lastLine.seq;
          void out.write(logText(fresh));
        };
        const onLog = (lines: LogLine[]) => {
          if (lines[0]?.operationId !== op.id) return;
          if (live) write(lines);
          else buffered.push(...lines);
        };
        const onFinished = (finished: OperationRecord) => {
          if (finished.id === op.id) resolveEnd();
        };
        bus.on("operation.log", onLog);
        bus.on("operation.finished", onFinished);
        out.onAbort(() => resolveEnd());
        try {
          for (;;) {
            const page = await store.getLogLines(op.id, last, 5000);
            if (page.length === 0) break;
            write(page);
          }
          live = true;
          write(buffered.splice(0));
          const now = await store.getOperation(op.id);
          if (!now || FINISHED_STATUSES.includes(now.status)) resolveEnd();
          await ended;
          // Lines stored just before the finish may still be on their way through the bus.
          write(await store.getLogLines(op.id, last));
        } finally {
          bus.off("operation.log", onLog);
          bus.off("operation.finished", onFinished);
        }
      });
      return streamed as never;
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/operations/{id}/cancel",
      summary: "Cancel a queued or running operation",
      request: { params: OperationParams },
      responses: {
        202: json(OperationSchema, "canceled, or cancel under way"),
        ...errorResponses(401, 404, 409),
      },
    }),
    async (c) => {
      const op = await service.cancelOperation(c.req.valid("param").id);
      return c.json(operationJson(op), 202);
    },
  );

  return app;
}
