// The rules the fields of a request must meet, each defined once. DeployService, git and the
// webhook intents check values with them; src/http/schemas.ts builds the API's zod schemas from
// the same definitions, so /openapi.json states every rule as a pattern or a length that means
// exactly what the code accepts (docs/api.md, "The OpenAPI document"): a fuzzer that generates
// requests from the document gets no refusal the document does not announce.
//
// Each pattern means the same in JavaScript and in JSON Schema's ECMA-262 dialect (which
// validators such as jsonschema-rs and Python's re read): the `u` flag makes JavaScript count
// code points, as JSON Schema's lengths do; no `.` (JavaScript's skips U+2028 and U+2029, the
// others' do not); `[` inside a class is escaped (Rust's regex would read a nested class).

/** Project and version names (docs/api.md): lowercase slugs of at most 63 characters. */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/u;

export function isSlug(value: string): boolean {
  return SLUG_PATTERN.test(value);
}

/** A full or abbreviated commit hash as the API accepts it. */
export const SHA_PATTERN = /^[0-9a-f]{7,64}$/u;

/** Characters git allows in a ref name: no ASCII control, space, `~ ^ : ? * [ \` (git-check-ref-format). */
const REF_CHAR = String.raw`[^\x00-\x20\x7f~^:?*\[\\]`;
/** git check-ref-format's rules on a whole name, as lookaheads (see REF_NAME_PATTERN). */
const REF_NAME_RULES =
  String.raw`(?![-/])(?!@$)(?!HEAD$)` +
  String.raw`(?!${REF_CHAR}*(?:\.\.|@\{|//|/\.))(?!\.)` +
  String.raw`(?!${REF_CHAR}*(?:/|\.)$)(?!${REF_CHAR}*\.lock(?:/|$))` +
  String.raw`${REF_CHAR}{1,255}`;

/**
 * Branch and tag names as `git check-ref-format --branch` accepts them, of at most 255
 * characters, and never starting with `-` (so a name can't be read as an option): no `..`,
 * `@{`, `//`, no part starting with `.` or ending with `.lock`, no leading or trailing `/`, no
 * trailing `.`, not `HEAD`, and (stricter than git) not `@`. Checked before any name reaches git.
 */
export const REF_NAME_PATTERN = new RegExp(`^${REF_NAME_RULES}$`, "u");

export function isValidRefName(name: string): boolean {
  return REF_NAME_PATTERN.test(name);
}

/**
 * The `ref` of `POST /api/projects/:project/versions`: a branch or tag name, `refs/heads/<b>`,
 * `refs/tags/<t>`, `refs/merge-requests/<iid>/head` or a commit hash. All of them are ref names;
 * the one extra rule is that the name after `refs/heads/` or `refs/tags/` is a ref name too.
 */
export const API_REF_PATTERN = new RegExp(
  String.raw`^(?!refs/(?:heads|tags)/(?:-|@$|HEAD$))${REF_NAME_RULES}$`,
  "u",
);

/** Environment variable names of a project's `env`. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/u;

/** Longest value of one `env` entry, in characters. */
export const ENV_VALUE_MAX = 65536;

/**
 * `composeFile`: a relative path inside the repository (no leading `/` or `-`, no `..` part),
 * of at most 255 characters of `A-Z a-z 0-9 . _ / -`.
 */
export const COMPOSE_FILE_PATTERN =
  /^(?=[A-Za-z0-9._/-]{1,255}$)(?![-/])(?![A-Za-z0-9._/-]*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._/-]+$/u;

/** One `autoDeploy.branches` glob: 1 to 255 characters, not starting with `-`. */
export const BRANCH_GLOB_PATTERN = /^(?!-)[\s\S]{1,255}$/u;

/** Most entries in `autoDeploy.branches`. */
export const BRANCH_GLOBS_MAX = 100;

const HOST = String.raw`[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*`;
const IPV6 = String.raw`\[[0-9A-Fa-f:.]+\]`;
// No leading `-`: ssh would read `-oProxyCommand=...@host` as an option.
const USER = String.raw`[A-Za-z0-9_][A-Za-z0-9._-]*`;
const REPO_PATH = String.raw`[A-Za-z0-9._~@+/-]*[A-Za-z0-9._~+-]`;
/** 1 to 65535, no leading zero. */
const PORT = String.raw`(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])`;
const SSH_URL = String.raw`ssh://(?:${USER}@)?(?:${HOST}|${IPV6})(?::${PORT})?/${REPO_PATH}`;
// `git@host:group/app.git`, and git's bracket form `[git@host:2222]:group/app.git` for a port.
const SCP_PORT_URL = String.raw`\[(?:${USER}@)?${HOST}:${PORT}\]:(?!/?/)${REPO_PATH}`;
const SCP_URL = String.raw`(?:${USER}@)?${HOST}:(?!/?/)${REPO_PATH}`;
// A user name but never a password: a token in the URL would be stored and shown with the project.
const HTTPS_URL = String.raw`https://(?:${USER}@)?(?:${HOST}|${IPV6})(?::${PORT})?/[A-Za-z0-9._~@+%/-]+`;

/**
 * Repository URLs dockbot clones (docs/api.md `repoUrl`), at most 1000 characters: scp-like
 * `git@host:group/app.git`, `ssh://git@host:2222/group/app.git`, or `https://host/group/app.git`
 * without a password, query or fragment. Never a value starting with `-`, with whitespace or
 * control characters, `::` (`ext::` transports), `file:` or any other transport.
 */
export const REPO_URL_PATTERN = new RegExp(
  String.raw`^(?=[\x21-\x7e]{1,1000}$)(?![\x21-\x7e]*::)(?![Ff][Ii][Ll][Ee]:)` +
    `(?:${SSH_URL}|${HTTPS_URL}|${SCP_PORT_URL}|${SCP_URL})$`,
  "u",
);

export function isValidRepoUrl(url: string): boolean {
  return REPO_URL_PATTERN.test(url);
}

/**
 * A `:project`, `:version` or operation `:id` in a path: an id (a UUID, lowercase hex and `-`)
 * or a name, both of which are slugs; anything else can name nothing.
 */
export const KEY_PATTERN = SLUG_PATTERN;

/** Length in characters (code points), as JSON Schema's `maxLength` counts. */
export function charLength(value: string): number {
  return [...value].length;
}

/**
 * A project's `healthPath` (docs/api.md, "Health"): an absolute URL path, with an optional query,
 * of at most 1024 characters, of the characters a URL carries unescaped (or %-escaped).
 */
export const HEALTH_PATH_PATTERN = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1023}$/u;

/**
 * A project's `limits.memory` (docs/api.md, "Resources"), as compose writes a memory size: a
 * number with an optional unit b, k, m or g (`512m`, `1.5g`).
 */
export const MEMORY_LIMIT_PATTERN = /^[0-9]{1,12}(\.[0-9]{1,6})?[bkmgBKMG]?$/u;

/** A project's `limits.cpus`: a positive number of CPUs, at most this many. */
export const CPUS_MAX = 1024;

/** A name people give (an API token's): at least one character that is not white space. */
export const NON_BLANK_PATTERN = /\S/u;
