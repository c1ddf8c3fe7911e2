// The citation check of docs/architecture.md ("The repository explains itself"): comments, test
// names and docs cite the repository's own documents (`docs/api.md`, `docs/api.md#socketio`,
// `docs/gitlab.md §2`, `(docs/api.md, "Socket.io")`) and its numbered invariants ("invariant 3",
// "invariants 2 and 5"). This module finds those citations in text and says which ones point at
// nothing. Pure: it gets file texts and answers problems, so its rules are tested on strings and
// test/unit/docs-citations.test.ts runs it over the real tree.
import path from "node:path";

/** One file as the check sees it: a path relative to the repository root, and its text. */
export interface SourceFile {
  path: string;
  text: string;
}

export interface CitationProblem {
  file: string;
  line: number;
  message: string;
}

/** Documents only the team had, never in the repository, and where their content lives now. */
export const TEAM_ONLY_DOCUMENTS: Readonly<Record<string, string>> = {
  "API.md": "docs/api.md",
  "ARCHITECTURE.md": "docs/architecture.md",
  "GITLAB.md": "docs/gitlab.md",
  "CONVENTIONS.md": "docs/architecture.md",
};

/** The document that numbers the invariants, and the heading of its numbered list. */
export const INVARIANTS_DOCUMENT = "docs/architecture.md";
const INVARIANTS_HEADING = /^##\s+Invariants\s*$/;

// Anything with a scheme is a link out of the repository (GitLab's own docs are cited so).
const URL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s)>\]"'`]+/gi;
// A document path: `docs/api.md`, `./x.md`, `../shared/API.md`, `README.md`, with an optional
// `#anchor`, and after it optionally ` §2`, `, "Heading"` or ` ("Heading")` (a section by number
// or by name).
const DOC =
  /(?<![\w/.-])((?:\.{1,2}\/|\/)?(?:[\w.-]+\/)*[\w.-]+\.md)(?![\w])(?:#([\w-]+))?(?:,?\s+§(\d+)|,?\s+\(?"([^"]+)")?/g;
// "invariant 3", "Invariants 2 and 5", "invariants 1, 2 and 4", "invariants 3-5".
const INVARIANT = /\binvariants?\s+(\d+(?:\s*(?:,|and|or|&|-|–|to)\s*\d+)*)\b/gi;
// `//`, `/*`, ` * `, `#` at the start of a comment's continuation line.
const COMMENT_LEADER = /^\s*(?:\/\/+|\/\*+|\*+(?!\/)|#+)\s*/;
// A markdown link or image target: [text](target) / ![alt](target "title").
const MD_LINK = /!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;

/** The invariant numbers a citation names: "2 and 5" -> [2, 5]; "3-5" -> [3, 4, 5]. */
export function invariantNumbersIn(list: string): number[] {
  const out: number[] = [];
  const parts = list.split(/\s*(?:,|and|or|&)\s*/);
  for (const part of parts) {
    const range = /^(\d+)\s*(?:-|–|to)\s*(\d+)$/.exec(part.trim());
    if (range) {
      const from = Number(range[1]);
      const to = Number(range[2]);
      for (let n = from; n <= to && n - from < 100; n++) out.push(n);
    } else if (/^\d+$/.test(part.trim())) {
      out.push(Number(part.trim()));
    }
  }
  return out;
}

/** The numbers of the list under "## Invariants" (`1. ...`, `2. ...`), in the order written. */
export function definedInvariants(markdown: string): number[] {
  const numbers: number[] = [];
  let inside = false;
  let fence = false;
  for (const line of markdown.split("\n")) {
    if (/^```/.test(line)) fence = !fence;
    if (fence) continue;
    if (/^#{1,2}\s/.test(line)) {
      inside = INVARIANTS_HEADING.test(line);
      continue;
    }
    const item = inside ? /^(\d+)\.\s/.exec(line) : null;
    if (item) numbers.push(Number(item[1]));
  }
  return numbers;
}

/** A heading's anchor as GitHub makes it: lowercase, punctuation dropped, spaces to hyphens. */
export function headingSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links keep their text
    .replace(/<[^>]+>/g, "") // inline HTML
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

interface Heading {
  text: string;
  slug: string;
}

/** Every ATX heading of a markdown text with its anchor (repeats get -1, -2 like GitHub's). */
export function headings(markdown: string): Heading[] {
  const out: Heading[] = [];
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of markdown.split("\n")) {
    if (/^```/.test(line)) fence = !fence;
    const match = fence ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!match?.[1]) continue;
    const text = match[1].replace(/`/g, "");
    const base = headingSlug(text);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.push({ text, slug: count === 0 ? base : `${base}-${count}` });
  }
  return out;
}

/**
 * Blanks out URLs (keeping columns), so a path inside a link out is not taken for a citation;
 * in markdown also link targets, which the link check reads.
 */
function withoutUrls(line: string, markdown: boolean): string {
  const blank = (s: string) => " ".repeat(s.length);
  const out = line.replace(URL, blank);
  return markdown ? out.replace(/\]\([^)]*\)/g, blank) : out;
}

export interface CheckOptions {
  /** Every file path of the repository (relative, `/`-separated) a citation may name. */
  existingPaths: ReadonlySet<string>;
  /** The texts of the markdown files citations may point into (at least docs/ and README.md). */
  documents: ReadonlyMap<string, string>;
}

/** Where a cited path points, relative to the repository root, or undefined when nowhere. */
function resolveCited(
  cited: string,
  from: string,
  existing: ReadonlySet<string>,
): string | undefined {
  const candidates = cited.startsWith("/")
    ? [cited.slice(1)]
    : [path.posix.normalize(cited), path.posix.join(path.posix.dirname(from), cited)];
  return candidates.find((c) => !c.startsWith("..") && existing.has(c));
}

/** A citation as the problem names it: `docs/api.md#x`, `docs/gitlab.md §2`, `docs/api.md, "X"`. */
function citationText(
  cited: string,
  anchor: string | undefined,
  sectionNumber: string | undefined,
  sectionName: string | undefined,
): string {
  const withAnchor = anchor === undefined ? cited : `${cited}#${anchor}`;
  if (sectionNumber !== undefined) return `${withAnchor} §${sectionNumber}`;
  return sectionName === undefined ? withAnchor : `${withAnchor}, "${sectionName}"`;
}

function sectionProblem(
  target: string,
  text: string,
  anchor: string | undefined,
  sectionNumber: string | undefined,
  sectionName: string | undefined,
): string | undefined {
  const list = headings(text);
  if (anchor !== undefined && !list.some((h) => h.slug === anchor)) {
    return `${target} has no heading with the anchor #${anchor}`;
  }
  if (
    sectionNumber !== undefined &&
    !list.some((h) => new RegExp(`^${sectionNumber}[.)]?\\s`).test(h.text))
  ) {
    return `${target} has no section §${sectionNumber} (a heading "${sectionNumber}. ...")`;
  }
  if (sectionName !== undefined) {
    const wanted = sectionName.toLowerCase();
    const found = list.some((h) => h.text.toLowerCase().includes(wanted));
    if (!found) return `${target} has no heading "${sectionName}"`;
  }
  return undefined;
}

/**
 * Every citation in `file` that points at nothing: a team-only document (API.md and the like),
 * a path that is not in the repository, an anchor, § number or quoted heading the cited
 * document lacks, an invariant number docs/architecture.md does not define; in markdown files
 * also every relative link whose file or anchor is missing.
 */
export function checkFile(file: SourceFile, options: CheckOptions): CitationProblem[] {
  const problems: CitationProblem[] = [];
  const invariantsText = options.documents.get(INVARIANTS_DOCUMENT);
  const invariants = new Set(invariantsText === undefined ? [] : definedInvariants(invariantsText));
  const isMarkdown = file.path.endsWith(".md");
  const lines = file.text.split("\n");
  const atLine = (line: number) => (message: string) =>
    problems.push({ file: file.path, line, message });

  // Citations wrap with the comment they are in ("... (docs/architecture.md, invariant\n// 3)"),
  // so they are read from the text with line breaks and comment leaders turned into one space.
  const starts: number[] = [];
  let flat = "";
  lines.forEach((raw, index) => {
    const text = withoutUrls(raw, isMarkdown);
    const part = isMarkdown || index === 0 ? text : text.replace(COMMENT_LEADER, "");
    if (index > 0) flat += " ";
    starts.push(flat.length);
    flat += part;
  });
  const lineOf = (offset: number) => {
    let line = 0;
    while (line + 1 < starts.length && (starts[line + 1] ?? Infinity) <= offset) line++;
    return line + 1;
  };

  for (const m of flat.matchAll(DOC)) {
    const at = atLine(lineOf(m.index));
    const cited = m[1] ?? "";
    const teamOnly = TEAM_ONLY_DOCUMENTS[path.posix.basename(cited)];
    if (teamOnly !== undefined) {
      at(`cites ${cited}, which is not in the repository: cite ${teamOnly}`);
      continue;
    }
    const target = resolveCited(cited, file.path, options.existingPaths);
    if (target === undefined) {
      at(`cites ${cited}, which does not exist (documents live in docs/)`);
      continue;
    }
    const text = options.documents.get(target);
    if (text === undefined) continue; // a markdown file outside docs/, e.g. a chart's README
    const problem = sectionProblem(target, text, m[2], m[3], m[4]);
    if (problem) at(`cites ${citationText(cited, m[2], m[3], m[4])}: ${problem}`);
  }

  for (const m of flat.matchAll(INVARIANT)) {
    const at = atLine(lineOf(m.index));
    for (const n of invariantNumbersIn(m[1] ?? "")) {
      if (!invariants.has(n)) {
        at(`cites invariant ${n}, which ${INVARIANTS_DOCUMENT} ("## Invariants") does not define`);
      }
    }
  }

  if (isMarkdown) {
    lines.forEach((raw, index) => {
      const at = atLine(index + 1);
      for (const m of raw.matchAll(MD_LINK)) {
        const href = m[1] ?? "";
        if (/^[a-z][a-z0-9+.-]*:/i.test(href)) continue; // http:, https:, mailto:
        const [linkPath = "", anchor] = href.split("#", 2);
        const target =
          linkPath === ""
            ? file.path
            : resolveCited(
                path.posix.join(path.posix.dirname(file.path), linkPath).replace(/\/$/, ""),
                "",
                options.existingPaths,
              );
        if (target === undefined) {
          at(`links to ${href}, which does not exist`);
          continue;
        }
        const text = linkPath === "" ? file.text : options.documents.get(target);
        if (anchor !== undefined && anchor !== "" && text !== undefined) {
          if (!headings(text).some((h) => h.slug === anchor)) {
            at(`links to ${href}: ${target} has no heading with the anchor #${anchor}`);
          }
        }
      }
    });
  }
  return problems.sort((a, b) => a.line - b.line);
}

/** The problems of every file, in file and line order. */
export function checkCitations(files: SourceFile[], options: CheckOptions): CitationProblem[] {
  return files.flatMap((f) => checkFile(f, options));
}

/** `src/x.ts:12: cites ...`, the form a failing test prints. */
export function formatProblem(p: CitationProblem): string {
  return `${p.file}:${p.line}: ${p.message}`;
}
