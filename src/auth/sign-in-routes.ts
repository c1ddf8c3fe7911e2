// GitLab sign-in for the dashboard (docs/api.md, "Who may do what"): GET /auth/gitlab starts
// the OAuth 2 authorization code flow with PKCE, GET /auth/gitlab/callback finishes it, POST
// /auth/sign-out ends the session.
// - `state` is bound to the browser that started: it is kept in a short `sign-in` session whose
//   cookie only that browser holds, compared in constant time, and used once (deleted before
//   the code is exchanged), so a replayed callback finds nothing.
// - The session is made new at sign-in (never a session id from before: no fixation).
// - Failed callbacks count toward the address's rate limit.
// Answers are small static pages: nothing from the request is echoed into them.
import { timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Auth } from "./auth.js";
import { authorizeUrl, exchangeCode, fetchGitlabUser, OAuthError, randomSecret } from "./oauth.js";
import { addressOf } from "./request-identity.js";
import { safeNext } from "./safe-next.js";
import { sameOriginRequest } from "./same-origin.js";
import {
  cookieOptions,
  SESSION_TTL_MS,
  sessionCookieName,
  SIGN_IN_TTL_MS,
  signInCookieName,
} from "./sessions.js";

const page = (c: Context, status: 400 | 401 | 404 | 429 | 502, title: string, text: string) =>
  c.html(
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${title} · dockbot</title></head>` +
      `<body><h1>${title}</h1><p>${text}</p><p><a href="/login">Back to sign-in</a></p></body></html>`,
    status,
    { "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'" },
  );

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function signInRoutes(auth: Auth): Hono {
  const app = new Hono();
  const secure = auth.secure;
  const SESSION = sessionCookieName(secure);
  const SIGN_IN = signInCookieName(secure);
  const log = auth.logger.child({ component: "sign-in" });

  app.get("/auth/gitlab", async (c) => {
    const oauth = auth.oauth;
    if (!oauth) {
      return page(
        c,
        404,
        "GitLab sign-in is off",
        "This dockbot has no GitLab application: sign in with a token.",
      );
    }
    const state = randomSecret();
    const verifier = randomSecret();
    const { cookie } = await auth.sessions.create(
      { kind: "sign-in", oauth: { state, verifier, next: safeNext(c.req.query("next")) } },
      SIGN_IN_TTL_MS,
    );
    setCookie(c, SIGN_IN, cookie, cookieOptions(secure, SIGN_IN_TTL_MS));
    return c.redirect(authorizeUrl(oauth, state, verifier), 302);
  });

  app.get("/auth/gitlab/callback", async (c) => {
    const oauth = auth.oauth;
    if (!oauth)
      return page(c, 404, "GitLab sign-in is off", "This dockbot has no GitLab application.");
    const address = addressOf(c);
    if (auth.limiter.blocked(address)) {
      return page(
        c,
        429,
        "Too many failed sign-ins",
        "Too many failed sign-ins from this address: try again later.",
      );
    }
    const failed = (status: 400 | 401 | 502, text: string) => {
      auth.limiter.fail(address);
      deleteCookie(c, SIGN_IN, { path: "/", secure });
      return page(c, status, "Sign-in failed", text);
    };
    const pending = await auth.sessions.read(getCookie(c, SIGN_IN), ["sign-in"]);
    // Single use: whatever happens next, this sign-in attempt is over.
    if (pending) await auth.sessions.end(pending);
    const state = c.req.query("state") ?? "";
    const code = c.req.query("code") ?? "";
    if (!pending?.oauth || !sameText(state, pending.oauth.state)) {
      log.warn({ address }, "GitLab sign-in callback with a wrong or unknown state");
      return failed(
        400,
        "This sign-in did not start in this browser, or it took too long. Start again.",
      );
    }
    if (code === "") {
      return failed(401, "GitLab did not let you sign in (the application was not authorized).");
    }
    let user;
    let grant;
    try {
      grant = await exchangeCode(oauth, code, pending.oauth.verifier, auth.fetch);
      user = await fetchGitlabUser(oauth.gitlabUrl, grant.accessToken, auth.fetch);
    } catch (error) {
      if (!(error instanceof OAuthError)) {
        log.warn({ err: error }, "GitLab unreachable during sign-in");
        return failed(502, "GitLab could not be reached to finish the sign-in. Try again.");
      }
      log.warn({ address, reason: error.message }, "GitLab refused a sign-in");
      return failed(
        401,
        "GitLab refused this sign-in (the code was used already or expired). Start again.",
      );
    }
    // The session ends when GitLab's access token does: rights are asked with it.
    const ttl = Math.min(SESSION_TTL_MS, (grant.expiresIn ?? Infinity) * 1000);
    const { cookie } = await auth.sessions.create(
      { kind: "user", user, gitlabToken: grant.accessToken },
      ttl,
    );
    deleteCookie(c, SIGN_IN, { path: "/", secure });
    setCookie(c, SESSION, cookie, cookieOptions(secure, ttl));
    log.info({ username: user.username, address }, "signed in with GitLab");
    return c.redirect(pending.oauth.next, 302);
  });

  app.post("/auth/sign-out", async (c) => {
    const fromOwnPage = sameOriginRequest(
      {
        origin: c.req.header("origin"),
        secFetchSite: c.req.header("sec-fetch-site"),
        host: c.req.header("host"),
      },
      auth.publicUrl,
    );
    if (!fromOwnPage)
      return c.json(
        { error: { code: "forbidden", message: "sign-out must come from dockbot's own pages" } },
        403,
      );
    const session = await auth.sessions.read(getCookie(c, SESSION));
    if (session) await auth.sessions.end(session);
    deleteCookie(c, SESSION, { path: "/", secure });
    return c.redirect("/login", 303);
  });

  return app;
}
