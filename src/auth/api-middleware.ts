// The one middleware in front of every /api/* route: who is asking (request-identity.ts), then
// the rule table (rules.ts) through authorize.ts, then the audit record of a change. Route files
// need no checks of their own; list answers are cut to what the asker may read.
import type { MiddlewareHandler } from "hono";
import type { Auth, Identity } from "./auth.js";
import { authorize, recordChange } from "./authorize.js";
import { addressOf, identify } from "./request-identity.js";
import { API_RULES, ruleMatcher } from "./rules.js";
import { AppError } from "../errors.js";
import type { Store } from "../store/store.js";

export type AuthVariables = { identity: Identity };

const matchApi = ruleMatcher(API_RULES);

export function apiAuthMiddleware(
  auth: Auth,
  store: Store,
): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const matched = matchApi(c.req.method, c.req.path);
    if (matched?.rule.need === "public") return next();
    const identity = await identify(auth, c);
    if (!identity) throw new AppError("unauthorized", "missing or wrong bearer token");
    c.set("identity", identity);
    if (!matched) {
      // No rule: an unknown path (the router answers 404) or a route someone forgot to list,
      // which only admins may use until it has a rule.
      if (!auth.globalRight(identity))
        throw new AppError("forbidden", "this route has no rule for you");
      return next();
    }
    const authorized = await authorize(auth, store, identity, matched, c);
    await next();
    if (matched.rule.list === "projects" && c.res.status === 200 && !auth.globalRight(identity)) {
      const all = (await c.res.clone().json()) as Array<{ id: string }>;
      const projects = await store.listProjects();
      const readable = new Set((await auth.readable(identity, projects)).map((p) => p.id));
      const headers = new Headers(c.res.headers);
      headers.delete("content-length");
      c.res = new Response(JSON.stringify(all.filter((p) => readable.has(p.id))), {
        status: 200,
        headers,
      });
    }
    await recordChange(auth, identity, matched, authorized, c, "api", addressOf(c));
  };
}
