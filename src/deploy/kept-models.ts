// The rendered model of each kept deploy (docs/api.md, "Rollback"), beside the version's
// checkout as `<checkout>.good-<sha12>.json`: what the deploy ran, with the host ports and the
// primary service it had, so a rollback runs exactly what passed its health check. Mode 0600:
// the model holds the project env's values. Written whole or not at all.
import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseComposeModel, type ComposeModel } from "./compose-model.js";
import { renderedModelPath } from "./prepare-model.js";
import type { VersionPort } from "../store/types.js";

export interface KeptModel {
  model: ComposeModel;
  ports: VersionPort[];
  primaryService?: string;
}

const KEPT_FILE = /\.good-[0-9a-f]{7,12}\.json$/;

export function keptModelPath(checkoutDir: string, sha: string): string {
  return `${checkoutDir}.good-${sha.slice(0, 12)}.json`;
}

/** Built services and the image each runs under, as a rendered model written by dockbot names them. */
export function builtImagesByService(model: ComposeModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, def] of Object.entries(model.services)) {
    if (def.build !== undefined && def.build !== null && typeof def.image === "string") {
      out[name] = def.image;
    }
  }
  return out;
}

async function writePrivate(file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** The version's current rendered model (written by prepareModel), parsed. */
export async function readCurrentModel(checkoutDir: string): Promise<ComposeModel> {
  return parseComposeModel(await readFile(renderedModelPath(checkoutDir), "utf8"), "v2");
}

export async function saveKeptModel(
  checkoutDir: string,
  sha: string,
  kept: KeptModel,
): Promise<void> {
  await writePrivate(keptModelPath(checkoutDir, sha), `${JSON.stringify(kept)}\n`);
}

/** The kept model of a deploy, when it is still there. */
export async function readKeptModel(
  checkoutDir: string,
  sha: string,
): Promise<KeptModel | undefined> {
  let text: string;
  try {
    text = await readFile(keptModelPath(checkoutDir, sha), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<KeptModel>;
  if (typeof parsed.model !== "object" || parsed.model === null || !Array.isArray(parsed.ports)) {
    return undefined;
  }
  const model = parseComposeModel(JSON.stringify(parsed.model), "v2");
  return typeof parsed.primaryService === "string"
    ? { model, ports: parsed.ports, primaryService: parsed.primaryService }
    : { model, ports: parsed.ports };
}

/** Makes a kept model the version's rendered model again; its path, for compose. */
export async function restoreKeptModel(checkoutDir: string, kept: KeptModel): Promise<string> {
  const rendered = renderedModelPath(checkoutDir);
  await writePrivate(rendered, `${JSON.stringify(kept.model, null, 2)}\n`);
  return rendered;
}

/** Removes the kept models of these commits, or (no list) every kept model of the version. */
export async function removeKeptModels(
  checkoutDir: string,
  shas?: readonly string[],
): Promise<void> {
  if (shas !== undefined) {
    await Promise.all(shas.map((sha) => rm(keptModelPath(checkoutDir, sha), { force: true })));
    return;
  }
  const dir = path.dirname(checkoutDir);
  const base = path.basename(checkoutDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  await Promise.all(
    names
      .filter((n) => n.startsWith(`${base}.good-`) && KEPT_FILE.test(n))
      .map((n) => rm(path.join(dir, n), { force: true })),
  );
}
