// Dashboard pages of src/auth: sign-in (GitLab and token), API tokens, a project's audit log.
import type { FC } from "hono/jsx";
import { Age, CsrfField, ErrorBox, Layout, Notice } from "./components.js";
import type { ApiTokenRecord, AuditRecord, ProjectRecord } from "../store/types.js";

export const SignInPage: FC<{ next: string; error?: string | undefined; gitlab: boolean }> = ({
  next,
  error,
  gitlab,
}) => (
  <Layout title="Sign in">
    <section class="card narrow">
      <h1>Sign in</h1>
      <ErrorBox text={error} />
      {gitlab && (
        <p>
          <a
            class="button primary"
            id="sign-in-gitlab"
            href={`/auth/gitlab?next=${encodeURIComponent(next)}`}
          >
            Sign in with GitLab
          </a>
        </p>
      )}
      <p>
        {gitlab ? "Or use" : "Use"} dockbot's admin token (the one given as DOCKBOT_ADMIN_TOKEN, or
        printed on first start).
      </p>
      <form method="post" action="/login">
        <input type="hidden" name="next" value={next} />
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          spellcheck={false}
        />
        <button type="submit">Sign in with the token</button>
      </form>
    </section>
  </Layout>
);

const who = (a: { user?: { username: string } | undefined; via: string }) =>
  a.user ? `@${a.user.username}` : a.via === "admin-token" ? "admin token" : "admin-token session";

export const TokensPage: FC<{
  csrf: string;
  tokens: ApiTokenRecord[];
  projects: ProjectRecord[];
  /** The token just made: shown this once. */
  created?: { name: string; token: string } | undefined;
  error?: string | undefined;
  notice?: string | undefined;
}> = (p) => {
  const names = new Map(p.projects.map((project) => [project.id, project.name]));
  return (
    <Layout title="API tokens" csrf={p.csrf}>
      <h1>API tokens</h1>
      <Notice text={p.notice} />
      <ErrorBox text={p.error} />
      {p.created && (
        <section class="card" id="new-token">
          <h2>Token “{p.created.name}”</h2>
          <p>Copy it now: dockbot keeps only its hash and will not show it again.</p>
          <code id="new-token-value">{p.created.token}</code>
        </section>
      )}
      <section class="card">
        <h2>Make a token</h2>
        <p class="small">
          A token never has more rights than you have when it is used: read (what you may read),
          deploy (also add versions, turn on and off, cancel), admin (everything you may do).
        </p>
        <form method="post" action="/tokens">
          <CsrfField csrf={p.csrf} />
          <label for="token-name">Name</label>
          <input id="token-name" name="name" required maxlength={100} />
          <label for="token-scope">Scope</label>
          <select id="token-scope" name="scope">
            <option value="read">read</option>
            <option value="deploy">deploy</option>
            <option value="admin">admin</option>
          </select>
          <label for="token-projects">Projects (names, comma-separated; empty: all yours)</label>
          <input id="token-projects" name="projects" />
          <label for="token-expires">Expires (optional)</label>
          <input id="token-expires" name="expiresAt" type="date" />
          <button type="submit" class="primary">
            Make token
          </button>
        </form>
      </section>
      <section class="card">
        <h2>Tokens</h2>
        {p.tokens.length === 0 ? (
          <p class="muted">No tokens yet.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Scopes</th>
                <th>Projects</th>
                <th>Made by</th>
                <th>Expires</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              {p.tokens.map((t) => (
                <tr data-token-row={t.id}>
                  <td>{t.name}</td>
                  <td>{t.scopes.join(", ")}</td>
                  <td>
                    {t.projects ? t.projects.map((id) => names.get(id) ?? id).join(", ") : "all"}
                  </td>
                  <td>{who(t.maker)}</td>
                  <td>{t.expiresAt ? <Age iso={t.expiresAt} /> : "never"}</td>
                  <td>
                    {t.revokedAt ? (
                      <span class="muted">revoked</span>
                    ) : (
                      <form
                        method="post"
                        action={`/tokens/${encodeURIComponent(t.id)}/revoke`}
                        class="inline"
                      >
                        <CsrfField csrf={p.csrf} />
                        <button type="submit" class="danger">
                          Revoke
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </Layout>
  );
};

export const AuditPage: FC<{
  csrf: string;
  project: ProjectRecord;
  entries: AuditRecord[];
  versions: Map<string, string>;
}> = (p) => (
  <Layout title={`Audit · ${p.project.name}`} csrf={p.csrf}>
    <h1>
      Who changed what in{" "}
      <a href={`/projects/${encodeURIComponent(p.project.name)}`}>{p.project.name}</a>
    </h1>
    {p.entries.length === 0 ? (
      <p class="muted">No changes recorded yet.</p>
    ) : (
      <table id="audit">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>What</th>
            <th>Version</th>
            <th>From</th>
          </tr>
        </thead>
        <tbody>
          {p.entries.map((e) => (
            <tr>
              <td>
                <Age iso={e.at} />
              </td>
              <td>
                {who(e.actor)}
                {e.actor.tokenName ? ` (token “${e.actor.tokenName}”)` : ""}
              </td>
              <td>
                {e.action} <span class="small muted">{e.request}</span>
              </td>
              <td>{e.versionId ? (p.versions.get(e.versionId) ?? e.versionId) : ""}</td>
              <td>{e.address ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    )}
  </Layout>
);
