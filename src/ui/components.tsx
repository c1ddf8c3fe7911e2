// Small pieces shared by the dashboard's pages. Everything rendered here is escaped by hono/jsx;
// nothing in src/ui builds HTML from strings.
import { createContext, useContext, type Child, type FC } from "hono/jsx";
import { ASSET_VERSION } from "./assets/assets.js";
import type {
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionState,
} from "../store/types.js";

export interface LayoutProps {
  title: string;
  /** Set on pages of a signed-in session: shows navigation and the sign-out form. */
  csrf?: string | undefined;
  /**
   * Set on pages whose live parts use Socket.io. The socket signs in with the session cookie,
   * so no token is ever put in a page (docs/api.md, "Who may do what").
   */
  live?: boolean | undefined;
  /** What the page subscribes to for state changes (`{}`, `{projectId}`); JSON. */
  liveScope?: string | undefined;
  children?: Child;
}

/** What the navigation offers the person the page is for (src/auth decides; ui-routes sets it). */
export interface NavRights {
  /** May add projects (admins). */
  mayCreate: boolean;
}

/** Unset (a page rendered on its own, as in unit tests): every link, as for an admin. */
export const NavContext = createContext<NavRights>({ mayCreate: true });

export const Layout: FC<LayoutProps> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="same-origin" />
      <title>{`${props.title} · dockbot`}</title>
      <link rel="stylesheet" href={`/assets/app.css?v=${ASSET_VERSION}`} />
    </head>
    <body data-live={props.live ? "on" : undefined} data-live-scope={props.liveScope}>
      <header class="top">
        <a class="brand" href="/">
          dockbot
        </a>
        {props.csrf !== undefined && (
          <nav>
            <a href="/">Projects</a>
            <NewProjectLink />
            <a href="/tokens">API tokens</a>
            <form method="post" action="/logout" class="inline">
              <CsrfField csrf={props.csrf} />
              <button type="submit" class="link">
                Sign out
              </button>
            </form>
          </nav>
        )}
      </header>
      <main>{props.children}</main>
      {props.live && <script src="/socket.io/socket.io.js" defer></script>}
      <script src={`/assets/app.js?v=${ASSET_VERSION}`} defer></script>
    </body>
  </html>
);

const NewProjectLink: FC = () =>
  useContext(NavContext).mayCreate ? <a href="/new-project">New project</a> : null;

export const CsrfField: FC<{ csrf: string }> = ({ csrf }) => (
  <input type="hidden" name="_csrf" value={csrf} />
);

/** A button that POSTs a form (works without JavaScript). */
export const PostButton: FC<{
  action: string;
  csrf: string;
  label: string;
  kind?: "danger" | "primary";
}> = (p) => (
  <form method="post" action={p.action} class="inline">
    <CsrfField csrf={p.csrf} />
    <button type="submit" class={p.kind ?? ""}>
      {p.label}
    </button>
  </form>
);

export const Notice: FC<{ text?: string | undefined }> = ({ text }) =>
  text ? (
    <p class="notice" role="status">
      {text}
    </p>
  ) : null;

export const ErrorBox: FC<{ text?: string | undefined }> = ({ text }) =>
  text ? (
    <p class="error" role="alert">
      {text}
    </p>
  ) : null;

export const StateBadge: FC<{ state: VersionState; versionId?: string }> = ({
  state,
  versionId,
}) => (
  <span class={`badge state-${state}`} data-version-state={versionId}>
    {state}
  </span>
);

export const StatusBadge: FC<{ status: OperationStatus; id?: string }> = ({ status, id }) => (
  <span class={`badge status-${status}`} id={id}>
    {status}
  </span>
);

export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export const Age: FC<{ iso: string }> = ({ iso }) => (
  <time datetime={iso} title={iso}>
    {ago(iso)}
  </time>
);

/** Short SHA, linked to the commit in GitLab when the project has its URL. */
export const Sha: FC<{ sha?: string | undefined; project: ProjectRecord }> = ({ sha, project }) => {
  if (!sha) return <span class="muted">–</span>;
  const short = <code>{sha.slice(0, 8)}</code>;
  const base = project.gitlab?.url;
  return base ? (
    <a href={`${base.replace(/\/+$/, "")}/-/commit/${sha}`} title={sha} rel="noreferrer noopener">
      {short}
    </a>
  ) : (
    <span title={sha}>{short}</span>
  );
};

export const KIND_LABEL: Record<OperationRecord["kind"], string> = {
  up: "Turn on",
  down: "Turn off",
  delete: "Delete",
  rollback: "Roll back",
};

export const LastOperation: FC<{ op?: OperationRecord | undefined; versionId: string }> = ({
  op,
  versionId,
}) => (
  <span data-last-op={versionId}>
    {op ? (
      <a href={`/operations/${op.id}`}>
        {KIND_LABEL[op.kind]} <StatusBadge status={op.status} />{" "}
        <Age iso={op.finishedAt ?? op.startedAt ?? op.queuedAt} />
      </a>
    ) : (
      <span class="muted">none yet</span>
    )}
  </span>
);

/** A value with a copy button; the button only appears with JavaScript (it needs it). */
export const Copyable: FC<{ id: string; value: string; block?: boolean }> = ({
  id,
  value,
  block,
}) => (
  <div class={block ? "copyable block" : "copyable"}>
    <code id={id}>{value}</code>
    <button type="button" class="small" data-copy={id} hidden>
      Copy
    </button>
  </div>
);
