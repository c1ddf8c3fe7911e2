import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  checkCitations,
  checkFile,
  definedInvariants,
  formatProblem,
  headingSlug,
  headings,
  INVARIANTS_DOCUMENT,
  invariantNumbersIn,
  type CheckOptions,
  type SourceFile,
} from "../support/doc-citations.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// Where citations are checked (docs/architecture.md, "The repository explains itself").
const SCANNED_DIRS = ["src", "test", "bench", "scripts", "docs"];
const SCANNED_FILES = ["README.md"];
// GitLab's payloads as GitLab sends them (they name files like README.md in commits), and the
// check itself, whose cases cite bad documents on purpose.
const NOT_SCANNED = new Set([
  "test/fixtures",
  "test/support/doc-citations.ts",
  "test/unit/docs-citations.test.ts",
]);
const TEXT_FILE = /\.(ts|tsx|js|mjs|cjs|sh|py|md|ya?ml|txt)$/;
const SKIPPED_DIRS = new Set(["node_modules", "dist", ".git", "data", "coverage"]);

/** Every file and directory under `dir` (relative to the root, `/`-separated). */
function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
    out.push(rel);
    if (entry.isDirectory()) walk(rel, out);
  }
  return out;
}

function repository(): { files: SourceFile[]; options: CheckOptions } {
  const all = walk("");
  const existingPaths = new Set(all);
  const documents = new Map<string, string>();
  for (const p of all) {
    if (p.endsWith(".md") && (p.startsWith("docs/") || !p.includes("/"))) {
      documents.set(p, readFileSync(path.join(root, p), "utf8"));
    }
  }
  const scanned = all.filter(
    (p) =>
      (SCANNED_FILES.includes(p) || SCANNED_DIRS.some((d) => p.startsWith(`${d}/`))) &&
      TEXT_FILE.test(p) &&
      ![...NOT_SCANNED].some((n) => p === n || p.startsWith(`${n}/`)),
  );
  const files = scanned.map((p) => ({ path: p, text: readFileSync(path.join(root, p), "utf8") }));
  return { files, options: { existingPaths, documents } };
}

// ------------------------------------------------------------------ the scanner on strings

const ARCHITECTURE = [
  "# Architecture",
  "## Invariants",
  "1. Processes start from argv arrays.",
  "2. Secrets never leak.",
  "   A continuation line, not an item.",
  "3. Stored before announced.",
  "## Decisions",
  "4. Not an invariant: a list under another heading.",
].join("\n");

const API = [
  "# dockbot API",
  "## Socket.io",
  "text",
  "## Routes",
  "### `DELETE /api/projects/:project`",
].join("\n");

const GITLAB = ["# GitLab", "## 1. Webhook request headers", "## 2. Delivery rules"].join("\n");

function fixture(extra: Record<string, string> = {}): CheckOptions {
  const documents = new Map<string, string>([
    ["docs/architecture.md", ARCHITECTURE],
    ["docs/api.md", API],
    ["docs/gitlab.md", GITLAB],
    ["README.md", "# dockbot\n## Run it\n"],
    ...Object.entries(extra),
  ]);
  return {
    documents,
    existingPaths: new Set([...documents.keys(), "docs", "src", "src/deploy/runner.ts"]),
  };
}

function problemsOf(text: string, file = "src/x.ts", options = fixture()): string[] {
  return checkFile({ path: file, text }, options).map(formatProblem);
}

describe("the citation scanner", () => {
  it("names file and line of a comment that cites a team-only document", () => {
    const text = ["// fine", "// Posted back to GitLab (API.md, 'Posted back')."].join("\n");
    expect(problemsOf(text)).toEqual([
      "src/x.ts:2: cites API.md, which is not in the repository: cite docs/api.md",
    ]);
  });

  it("refuses ARCHITECTURE.md, GITLAB.md and paths to the team's shared folder", () => {
    const text = [
      "// see ARCHITECTURE.md, invariant 3",
      "# (GITLAB.md §2)",
      " * The contract is `shared/API.md`; also /work/shared/GITLAB.md §4.",
      'it("gives API.md\'s defaults", () => {});',
    ].join("\n");
    expect(problemsOf(text, "scripts/x.sh")).toEqual([
      "scripts/x.sh:1: cites ARCHITECTURE.md, which is not in the repository: cite docs/architecture.md",
      "scripts/x.sh:2: cites GITLAB.md, which is not in the repository: cite docs/gitlab.md",
      "scripts/x.sh:3: cites shared/API.md, which is not in the repository: cite docs/api.md",
      "scripts/x.sh:3: cites /work/shared/GITLAB.md, which is not in the repository: cite docs/gitlab.md",
      "scripts/x.sh:4: cites API.md, which is not in the repository: cite docs/api.md",
    ]);
  });

  it("fails a docs/ file that does not exist and a bare name that is not at the root", () => {
    expect(problemsOf("// see docs/deploy.md and api.md")).toEqual([
      "src/x.ts:1: cites docs/deploy.md, which does not exist (documents live in docs/)",
      "src/x.ts:1: cites api.md, which does not exist (documents live in docs/)",
    ]);
  });

  it("accepts documents that exist, with an anchor, a § number or a quoted heading", () => {
    const text = [
      '// docs/api.md, docs/api.md#socketio, (docs/api.md, "Socket.io"), README.md',
      "// docs/gitlab.md §2 and docs/gitlab.md#1-webhook-request-headers",
      "// docs/api.md#delete-apiprojectsproject",
    ].join("\n");
    expect(problemsOf(text)).toEqual([]);
  });

  it("fails an anchor, a § number or a quoted heading the cited document lacks", () => {
    const text = [
      "// docs/api.md#webhooks",
      "// docs/gitlab.md §9",
      '// (docs/api.md, "Configuration")',
      '// docs/api.md ("Preview router") says',
    ].join("\n");
    expect(problemsOf(text)).toEqual([
      "src/x.ts:1: cites docs/api.md#webhooks: docs/api.md has no heading with the anchor #webhooks",
      'src/x.ts:2: cites docs/gitlab.md §9: docs/gitlab.md has no section §9 (a heading "9. ...")',
      'src/x.ts:3: cites docs/api.md, "Configuration": docs/api.md has no heading "Configuration"',
      'src/x.ts:4: cites docs/api.md, "Preview router": docs/api.md has no heading "Preview router"',
    ]);
  });

  it("ignores paths inside URLs: GitLab's own docs are cited by their address", () => {
    const text =
      "// https://gitlab.com/gitlab-org/gitlab/-/blob/master/doc/api/commits.md#set-the-pipeline-status";
    expect(problemsOf(text)).toEqual([]);
  });

  it("fails an invariant number that docs/architecture.md does not define", () => {
    const text = [
      "// stored before announced (invariant 3)",
      "// invariants 2 and 7, Invariant 9; invariants 1, 2 and 3",
      "// invariants 2-5",
      "// the seam invariant, every invariant below",
    ].join("\n");
    const where = `${INVARIANTS_DOCUMENT} ("## Invariants") does not define`;
    expect(problemsOf(text)).toEqual([
      `src/x.ts:2: cites invariant 7, which ${where}`,
      `src/x.ts:2: cites invariant 9, which ${where}`,
      `src/x.ts:3: cites invariant 4, which ${where}`,
      `src/x.ts:3: cites invariant 5, which ${where}`,
    ]);
  });

  it("reads a citation that wraps onto the comment's next line", () => {
    const text = [
      "// OperationLog stores a line before it announces it (docs/architecture.md, invariant",
      "// 7), so any line announced before the follow existed is in the store read, and",
      " * (docs/api.md,",
      ' *  "Routing")',
      "# invariants 1 and",
      "#   2",
    ].join("\n");
    expect(problemsOf(text)).toEqual([
      `src/x.ts:1: cites invariant 7, which ${INVARIANTS_DOCUMENT} ("## Invariants") does not define`,
      'src/x.ts:3: cites docs/api.md, "Routing": docs/api.md has no heading "Routing"',
    ]);
  });

  it("fails every invariant citation when the invariants document is missing", () => {
    const options = fixture();
    const documents = new Map(options.documents);
    documents.delete(INVARIANTS_DOCUMENT);
    expect(problemsOf("// invariant 1", "src/x.ts", { ...options, documents })).toHaveLength(1);
  });

  it("reads the invariants as the numbered list under '## Invariants' only", () => {
    expect(definedInvariants(ARCHITECTURE)).toEqual([1, 2, 3]);
    expect(invariantNumbersIn("1, 2 and 4")).toEqual([1, 2, 4]);
    expect(invariantNumbersIn("3-5")).toEqual([3, 4, 5]);
  });

  it("checks the links between docs: a missing file, a missing anchor, a good one", () => {
    const doc = [
      "See [the API](api.md#socketio), [routes](api.md#routes), [runner](../src/deploy/runner.ts).",
      "Also [deploying](deploying.md), [GitLab](gitlab.md#delivery), [here](#invariants),",
      "[up](../README.md#run-it), [out](https://docs.gitlab.com/api/commits/).",
    ].join("\n");
    expect(problemsOf(doc, "docs/architecture.md")).toEqual([
      "docs/architecture.md:2: links to deploying.md, which does not exist",
      "docs/architecture.md:2: links to gitlab.md#delivery: docs/gitlab.md has no heading with the anchor #delivery",
      "docs/architecture.md:2: links to #invariants: docs/architecture.md has no heading with the anchor #invariants",
    ]);
  });

  it("makes anchors as GitHub does", () => {
    expect(headingSlug("Socket.io")).toBe("socketio");
    expect(headingSlug("DELETE /api/projects/:project")).toBe("delete-apiprojectsproject");
    expect(headingSlug("2. Delivery rules")).toBe("2-delivery-rules");
    expect(headingSlug("Group commit — why")).toBe("group-commit--why");
    expect(headings("## A\n```\n## not a heading\n```\n## A").map((h) => h.slug)).toEqual([
      "a",
      "a-1",
    ]);
  });
});

// ------------------------------------------------------------------ the repository itself

describe("the repository's citations", () => {
  it("cite only documents, sections and invariants that exist", () => {
    const { files, options } = repository();
    expect(files.length).toBeGreaterThan(50);
    expect(checkCitations(files, options).map(formatProblem)).toEqual([]);
  });

  it("number the invariants of docs/architecture.md 1..N, each once", () => {
    const text = readFileSync(path.join(root, INVARIANTS_DOCUMENT), "utf8");
    const numbers = definedInvariants(text);
    expect(numbers.length).toBeGreaterThanOrEqual(5);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  });
});
