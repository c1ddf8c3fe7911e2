// The preview router's host rule, defined once (docs/api.md, "Preview router"): a version is
// served at `<version>--<project>.<domain>` and one of its services at
// `<service>--<version>--<project>.<domain>`, where the domain comes from DOCKBOT_PREVIEW_URL
// (`*` stands for the host label). The router, the version JSON (`previewUrl`), the dashboard and
// the GitLab environments all use these functions, so a link and the route it points to agree.
import { createHash } from "node:crypto";

/** A DNS label is at most 63 characters (RFC 1035); longer host labels are shortened. */
export const MAX_HOST_LABEL = 63;
const HASH_LENGTH = 7;
const SEPARATOR = "--";

/** One DNS label: letters, digits and inner hyphens, 1–63 characters. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** What the config accepts as DOCKBOT_PREVIEW_URL: http(s), a host starting with `*.`. */
export const PREVIEW_URL_PATTERN = /^https?:\/\/\*\.[a-z0-9.-]+(?::\d{1,5})?(?:\/[^\s*]*)?$/i;

export interface PreviewSettings {
  /** 0: the router is off and no version has a preview URL. */
  port: number;
  /** DOCKBOT_PREVIEW_URL, e.g. `http://*.localhost:3001`. */
  url: string;
}

/** A compose service name as it can appear in a host name (lowercase, hyphens only). */
export function serviceHostPart(service: string): string {
  return service
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * `<version>--<project>` (or `<service>--<version>--<project>`), one DNS label. When longer than
 * 63 characters the end is replaced by a hash of the whole, so two long names stay apart.
 */
export function previewHostLabel(project: string, version: string, service?: string): string {
  const parts =
    service === undefined ? [version, project] : [serviceHostPart(service), version, project];
  const full = parts.filter((p) => p !== "").join(SEPARATOR);
  if (full.length <= MAX_HOST_LABEL) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, HASH_LENGTH);
  const head = full.slice(0, MAX_HOST_LABEL - HASH_LENGTH - 1).replace(/-+$/, "");
  return `${head}-${hash}`;
}

/** The preview URL of a version (or of one of its services) for a DOCKBOT_PREVIEW_URL pattern. */
export function previewUrlFor(
  pattern: string,
  project: string,
  version: string,
  service?: string,
): string {
  return pattern.replace("*", previewHostLabel(project, version, service));
}

/** The part of DOCKBOT_PREVIEW_URL after `*.`, as a lowercase host name (no port). */
export function previewDomain(pattern: string): string {
  return new URL(pattern.replace("*", "x")).hostname.replace(/^x\./, "").toLowerCase();
}

/** The scheme people reach previews with (`https` behind a TLS proxy), for X-Forwarded-Proto. */
export function previewScheme(pattern: string): "http" | "https" {
  return pattern.toLowerCase().startsWith("https:") ? "https" : "http";
}

/**
 * The version's `previewUrl` (docs/api.md, "Resources"): null while the router is off or the
 * version has no published TCP port.
 */
export function versionPreviewUrl(
  preview: PreviewSettings | undefined,
  project: string,
  version: { name: string; ports?: ReadonlyArray<{ protocol: string }> },
): string | null {
  if (!preview || preview.port === 0) return null;
  if (!(version.ports ?? []).some((p) => p.protocol === "tcp")) return null;
  return previewUrlFor(preview.url, project, version.name);
}

export type ParsedPreviewHost =
  /** A single DNS label under the preview domain: look it up. */
  | { kind: "label"; label: string }
  /** A well-formed host that is not a preview host (another domain, a nested name). */
  | { kind: "foreign"; host: string }
  /** No Host, or one no client should send. */
  | { kind: "malformed"; reason: string };

/** Reads a Host header against the preview domain. Pure: the router decides what to answer. */
export function parsePreviewHost(host: string | undefined, domain: string): ParsedPreviewHost {
  if (host === undefined || host.trim() === "")
    return { kind: "malformed", reason: "no Host header" };
  const raw = host.trim().toLowerCase();
  if (raw.length > 255) return { kind: "malformed", reason: "Host header too long" };
  if (raw.startsWith("[")) {
    return /^\[[0-9a-f:.]+\](?::\d{1,5})?$/.test(raw)
      ? { kind: "foreign", host: raw }
      : { kind: "malformed", reason: "not a host name" };
  }
  const colon = raw.indexOf(":");
  const name = (colon === -1 ? raw : raw.slice(0, colon)).replace(/\.$/, "");
  const port = colon === -1 ? "" : raw.slice(colon + 1);
  if (colon !== -1 && !/^\d{1,5}$/.test(port)) return { kind: "malformed", reason: "bad port" };
  const labels = name.split(".");
  if (!labels.every((l) => DNS_LABEL.test(l))) {
    return { kind: "malformed", reason: "not a host name" };
  }
  const suffix = `.${domain}`;
  if (!name.endsWith(suffix)) return { kind: "foreign", host: name };
  const label = name.slice(0, -suffix.length);
  if (label.includes(".")) return { kind: "foreign", host: name };
  return { kind: "label", label };
}
