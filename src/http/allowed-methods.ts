// 405 for a known path asked with a method none of its routes serves (RFC 9110 §15.5.6), with
// the `Allow` header listing the ones they do. Worked out from the routes registered on the app
// when the request comes, so every route, the API's, the webhook receiver's and the dashboard's,
// and any route added later, answers 405 without saying so itself.
import type { RouterRoute } from "hono/types";

interface CompiledRoute {
  method: string;
  pattern: RegExp;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A hono route path (`/api/projects/:project`, `:id{[0-9]+}`, `*`) as an anchored regex. */
function pathPattern(path: string): RegExp {
  const source = path
    .split("/")
    .map((segment) => {
      if (segment === "*") return "[^]*";
      const param = /^:[^{?]+(?:\{(.+)\})?(\?)?$/.exec(segment);
      if (param) return `(?:${param[1] ?? "[^/]+"})${param[2] ?? ""}`;
      return escapeRegExp(segment);
    })
    .join("/");
  return new RegExp(`^${source}$`);
}

/**
 * The methods the app's routes serve on `path`, `HEAD` included wherever `GET` is (hono answers
 * it with the GET route), sorted; empty when no route has the path. Middleware (`ALL`) counts
 * for no method.
 */
export function allowedMethods(routes: readonly RouterRoute[]): (path: string) => string[] {
  let compiled: CompiledRoute[] = [];
  let compiledCount = -1;
  return (path) => {
    if (compiledCount !== routes.length) {
      compiled = routes
        .filter((r) => r.method !== "ALL")
        .map((r) => ({ method: r.method.toUpperCase(), pattern: pathPattern(r.path) }));
      compiledCount = routes.length;
    }
    const allowed = new Set<string>();
    for (const route of compiled) if (route.pattern.test(path)) allowed.add(route.method);
    if (allowed.has("GET")) allowed.add("HEAD");
    return [...allowed].sort();
  };
}
