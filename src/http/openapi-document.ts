// GET /openapi.json: the OpenAPI 3.1 document of every route registered with `app.openapi()`,
// generated from the zod schemas that validate requests (docs/api.md, "The OpenAPI document").
//
// The error answers every route shares are added here, from what the route declares, so a new
// route is documented exactly without listing them itself (test/unit/openapi-document.test.ts
// checks the whole registry):
// - 400 `invalid_request` when it takes path or query parameters, headers or a body;
// - 401 `unauthorized`, 403 `forbidden`, 429 `rate_limited` and 503 `unavailable` when it needs
//   a token or session (src/auth checks it, counts failures per address, and every such route
//   reads the store, which can be down);
// - 404 `not_found` when its path names a record;
// - 413 `too_large` when it takes a body (API_BODY_MAX_BYTES).
// What only some routes answer (409, 422) each route lists itself with `errorResponses`.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorResponses, type ErrorStatus } from "./schemas.js";

/** Largest request body of an `/api/*` route; a larger one is answered 413 before it is read. */
export const API_BODY_MAX_BYTES = 1024 * 1024;

type Definition = OpenAPIHono["openAPIRegistry"]["definitions"][number];
type RouteDefinition = Extract<Definition, { type: "route" }>;
export type DocumentedRoute = RouteDefinition["route"];

/** The error statuses a route answers by what it declares (see the file's comment). */
export function sharedErrorStatuses(route: DocumentedRoute): ErrorStatus[] {
  const request = route.request ?? {};
  const takesInput =
    request.params !== undefined ||
    request.query !== undefined ||
    request.headers !== undefined ||
    request.body !== undefined;
  const secured = route.security === undefined || route.security.length > 0;
  const statuses: ErrorStatus[] = [];
  if (takesInput) statuses.push(400);
  if (secured) statuses.push(401, 403);
  if (route.path.includes("{")) statuses.push(404);
  if (request.body !== undefined) statuses.push(413);
  if (secured) statuses.push(429, 503);
  return statuses;
}

/** The route's responses with the shared error answers it does not list itself. */
function withSharedErrors(route: DocumentedRoute): DocumentedRoute["responses"] {
  return { ...errorResponses(...sharedErrorStatuses(route)), ...route.responses };
}

export type DocumentInfo = Parameters<OpenAPIHono["getOpenAPI31Document"]>[0]["info"];

/** The document of every route registered on `app` (its sub-apps' routes included). */
export function openApiDocument(app: OpenAPIHono, info: DocumentInfo) {
  // The registry hands out a fresh list of the same definition objects: each route is
  // completed in place (adding what is missing again adds nothing).
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type === "route")
      definition.route.responses = withSharedErrors(definition.route);
  }
  return app.getOpenAPI31Document({ openapi: "3.1.0", info, security: [{ bearer: [] }] });
}
