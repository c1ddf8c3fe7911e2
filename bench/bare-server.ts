// The baseline of the webhooks benchmark: a bare hono route that answers 202, nothing else.
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono();
app.post("/webhooks/gitlab", (c) => c.json({ operations: [] }, 202));
serve({ fetch: app.fetch, port: Number(process.argv[2] ?? 0), hostname: "127.0.0.1" });
