// The steps of the operations that stop a version: `down` (containers gone, volumes and images
// stay) and `delete` (everything dockbot made for the version, and nothing else:
// docs/architecture.md, invariant 5). Both run from the version's rendered model when it has
// one, else from its checkout's compose file, else by the compose project's label.
import { rm } from "node:fs/promises";
import path from "node:path";
import { historyOf } from "../deploy-history.js";
import { removeKeptModels } from "../kept-models.js";
import { readRenderedModel, renderedModelPath } from "../prepare-model.js";
import type { VersionRecord } from "../../store/types.js";
import type { StepContext } from "./context.js";

export async function down(ctx: StepContext, version: VersionRecord): Promise<VersionRecord> {
  const { io, opLog } = ctx;
  const rendered = await renderedTarget(ctx, version);
  const target = rendered?.target ?? (await composeTarget(ctx, version));
  opLog.system(`[dockbot] docker compose down (project ${version.composeProject})`);
  if (target) await ctx.deps.compose.down(target);
  else
    await ctx.deps.compose.removeByLabel(version.composeProject, {
      keepVolumes: true,
      images: false,
      ...io,
    });
  return ctx.saveVersion(version, { state: "off", urls: [] });
}

/**
 * Removes the version's containers, images (also the kept images of older deploys), networks,
 * volumes unless asked to keep them, its checkout and its record; the last version of a project
 * being deleted takes the project and its mirror with it.
 */
export async function deleteVersion(ctx: StepContext, version: VersionRecord): Promise<void> {
  const { op, project, io, opLog } = ctx;
  const { compose, git, store, bus, service } = ctx.deps;
  const keepVolumes = op.options?.keepVolumes ?? false;
  const rendered = await renderedTarget(ctx, version);
  const target = rendered?.target ?? (await composeTarget(ctx, version));
  opLog.system(
    `[dockbot] removing containers, images, networks${keepVolumes ? "" : ", volumes"} of ${version.composeProject}`,
  );
  // The kept images of older deploys too, also of services the current model no longer has.
  const services = [
    ...new Set([
      ...(rendered?.services ?? []),
      ...historyOf(version).flatMap((d) => Object.keys(d.images ?? {})),
    ]),
  ];
  if (target) await compose.remove({ ...target, keepVolumes, services });
  else
    await compose.removeByLabel(version.composeProject, {
      keepVolumes,
      images: true,
      services,
      ...io,
    });
  opLog.system("[dockbot] removing the checkout");
  const checkoutDir = git.checkoutDir(project.name, version.name);
  await rm(renderedModelPath(checkoutDir), { force: true });
  await removeKeptModels(checkoutDir);
  await git.removeCheckout(project.name, version.name);
  await ctx.persist(() => store.deleteVersion(version.id));
  bus.emit("version.deleted", version);
  if (await service.finishProjectDeletion(project.id)) {
    await git.removeMirror(project.name);
  }
}

/** The version's rendered model as a compose target, when it ran from one. */
async function renderedTarget(ctx: StepContext, version: VersionRecord) {
  const { project, io } = ctx;
  const dir = ctx.deps.git.checkoutDir(project.name, version.name);
  const found = await readRenderedModel(dir);
  if (!found) return undefined;
  const target = {
    dir,
    file: path.basename(found.rendered),
    rendered: found.rendered,
    projectName: version.composeProject,
    env: project.env,
    ...io,
  };
  return { target, services: found.builtServices };
}

/** The checkout and compose file of a version, when both are still there. */
async function composeTarget(ctx: StepContext, version: VersionRecord) {
  const { project, io } = ctx;
  const dir = ctx.deps.git.checkoutDir(project.name, version.name);
  try {
    const file = await ctx.deps.compose.findComposeFile(dir, project.composeFile);
    return { dir, file, projectName: version.composeProject, env: project.env, ...io };
  } catch {
    // No checkout (never deployed, or removed by hand) or no compose file in it: the caller
    // falls back to removing the project's objects by their compose label.
    return undefined;
  }
}
