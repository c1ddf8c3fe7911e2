// The same-origin rule for Socket.io handshakes. WebSockets are not covered by CORS, so this is
// what stops another site from riding a user's page: a browser Origin whose host is neither the
// request's Host nor DOCKBOT_PUBLIC_URL's host is refused (docs/api.md, "Socket.io").

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

/** Same-origin rule for WebSocket and polling handshakes. */
export function originAllowed(
  origin: string | undefined,
  hostHeader: string | undefined,
  publicUrl: string,
): boolean {
  if (origin === undefined) return true; // not a browser: curl, socket.io-client in Node, other services
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
