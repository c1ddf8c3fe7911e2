// The same-origin rule, defined once for the API (requests that ride the session cookie), the
// dashboard's forms and Socket.io handshakes (docs/api.md, "Who may do what"). WebSockets and
// form posts are not covered by CORS, so this is what stops another site from riding a signed-in
// user's browser: an Origin whose host is neither the request's Host nor DOCKBOT_PUBLIC_URL's
// host is refused.

/** The host of an Origin header value, or undefined when it is not a URL ("null", junk). */
function originHost(origin: string): { host: string; defaultPortHost: string } | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return {
      host: url.host.toLowerCase(),
      defaultPortHost: `${url.hostname}:${port}`.toLowerCase(),
    };
  } catch {
    return undefined;
  }
}

/**
 * True when a browser Origin is dockbot's own. No Origin at all is allowed here: that is not a
 * browser (curl, socket.io-client in Node), or a form whose CSRF token still decides.
 */
export function originAllowed(
  origin: string | undefined,
  hostHeader: string | undefined,
  publicUrl: string,
): boolean {
  if (origin === undefined) return true;
  const from = originHost(origin);
  if (!from) return false;
  const allowed = new Set<string>();
  if (hostHeader) allowed.add(hostHeader.toLowerCase());
  const publicHost = originHost(publicUrl);
  if (publicHost) {
    allowed.add(publicHost.host);
    allowed.add(publicHost.defaultPortHost);
  }
  return allowed.has(from.host) || allowed.has(from.defaultPortHost);
}

/**
 * An API request authenticated by the session cookie (not a bearer token) must say it comes
 * from dockbot's own pages: an Origin of dockbot's, else `Sec-Fetch-Site: same-origin` (or
 * `none`: the person typed the URL). A request that says neither is refused: every browser that
 * sends cookies sends one of them, and a script elsewhere has no cookie to send.
 */
export function sameOriginRequest(
  headers: {
    origin?: string | undefined;
    secFetchSite?: string | undefined;
    host?: string | undefined;
  },
  publicUrl: string,
): boolean {
  if (headers.origin !== undefined) return originAllowed(headers.origin, headers.host, publicUrl);
  return headers.secFetchSite === "same-origin" || headers.secFetchSite === "none";
}
