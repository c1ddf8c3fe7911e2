// Dashboard sessions: the store-backed sessions of src/auth (src/auth/sessions.ts), seen from the
// dashboard. A session is either a GitLab sign-in (/auth/gitlab) or a sign-in with the admin
// token (/login, for installations without a GitLab application). Pages never carry a token:
// their Socket.io connection signs in with the same cookie.
import type { Auth } from "../auth/auth.js";
import type { SessionRecord } from "../store/types.js";

export type Session = SessionRecord;

export interface SessionKeeper {
  /** A new admin-token session (the token was checked); returns the cookie value. */
  create(): Promise<{ cookie: string; session: Session }>;
  /** The session of a cookie value, or undefined when it is missing, unknown, expired or ended. */
  read(cookie: string | undefined): Promise<Session | undefined>;
  end(session: Session): Promise<void>;
  csrfMatches(session: Session, presented: string | undefined): boolean;
}

export function uiAuth(auth: Auth): SessionKeeper {
  return {
    create: () => auth.sessions.create({ kind: "admin-token" }),
    read: (cookie) => auth.sessions.read(cookie),
    end: (session) => auth.sessions.end(session),
    csrfMatches: (session, presented) => auth.sessions.csrfMatches(session, presented),
  };
}
