/** A JSON client for dockbot's API with the bearer token, as a script or a user would call it. */
export type ApiCall = <T = unknown>(
  method: string,
  url: string,
  body?: unknown,
) => Promise<{ status: number; body: T }>;

/** `base` may be a function when the address is known only after the server starts. */
export function apiClient(base: string | (() => string), token: string): ApiCall {
  return async <T>(method: string, url: string, body?: unknown) => {
    const res = await fetch(`${typeof base === "string" ? base : base()}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/**
 * Polls an operation until it is neither queued nor running; throws after `timeoutMs`. A 503
 * (the database away for a moment) is asked again; any other error answer fails at once.
 */
export async function waitForOperation<T extends { status: string }>(
  api: ApiCall,
  id: string,
  timeoutMs: number,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await api<T>("GET", `/api/operations/${id}`);
    if (status !== 200 && status !== 503) {
      throw new Error(`GET /api/operations/${id} answered ${status}: ${JSON.stringify(body)}`);
    }
    const current = status === 200 ? body.status : "unavailable (503)";
    if (status === 200 && !["queued", "running"].includes(current)) return body;
    if (Date.now() > until)
      throw new Error(`operation ${id} still ${current} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
