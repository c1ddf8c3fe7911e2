// Where a sign-in may send the browser afterwards: a path inside dockbot; anything else
// (another site, `//host`, control characters) becomes "/". Used by the token and GitLab sign-ins.
export function safeNext(next: string | undefined): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if ([...next].some((ch) => ch < " " || ch === "\\") || next.length > 500) return "/";
  return next;
}
