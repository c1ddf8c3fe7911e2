// The steps of the operations that start a version (docs/api.md, "Health and rollback",
// "Rollback"): `up` (fetch, resolve, deploy the commit, roll back to the last good deploy when
// it fails), `rollback` (a manual one), and what they share: deploying a commit, keeping a
// verified deploy, pruning what is no longer kept, restoring a kept deploy.
import path from "node:path";
import {
  historyOf,
  imageRepoOf,
  keptImageTag,
  planRollback,
  recordGoodDeploy,
  removableTags,
  versionImageRepos,
} from "../deploy-history.js";
import { HealthCheckError, waitForHealth, type HealthProbe } from "../health-wait.js";
import {
  builtImagesByService,
  readCurrentModel,
  readKeptModel,
  restoreKeptModel,
  saveKeptModel,
  removeKeptModels,
} from "../kept-models.js";
import { prepareModel } from "../prepare-model.js";
import { RunningLimitError } from "../running-limit.js";
import type { GoodDeploy, VersionPort, VersionRecord } from "../../store/types.js";
import { oneLine, RolledBackError, throwIfAborted, urlsOf, type StepContext } from "./context.js";

/**
 * Fetches the repository, resolves the version's ref and deploys the commit; when that fails,
 * brings the last good deploy back (docs/api.md, "Health and rollback") and throws
 * RolledBackError, unless the project says "off" or the operation itself was stopped.
 */
export async function up(ctx: StepContext, version: VersionRecord): Promise<VersionRecord> {
  const { op, project, io, opLog } = ctx;
  const { git, store } = ctx.deps;
  opLog.system(`[dockbot] fetching ${project.repoUrl}`);
  const { cloned } = await git.syncMirror(project.name, project.repoUrl, io);
  opLog.system(cloned ? "[dockbot] cloned the repository" : "[dockbot] fetched the repository");
  throwIfAborted(io);
  const sha = await git.resolveRef(project.name, version.ref, op.sha);
  if (op.sha !== sha) await ctx.persist(() => store.updateOperation(op.id, { sha }));
  try {
    return await deployCommit(ctx, version, sha);
  } catch (error) {
    const good = historyOf(version)[0];
    if (
      io.signal?.aborted ||
      error instanceof RunningLimitError ||
      project.rollback === "off" ||
      !good ||
      good.sha === sha
    )
      throw error;
    const why = oneLine(error instanceof Error ? error.message : String(error));
    opLog.system(
      `[dockbot] ${why}; rolling back to ${good.sha.slice(0, 8)} (the last good deploy)`,
    );
    let back: VersionRecord;
    try {
      const latest = (await store.getVersion(version.id)) ?? version;
      back = await restoreDeploy(ctx, latest, good);
    } catch (rollbackError) {
      const reason = rollbackError instanceof Error ? rollbackError.message : String(rollbackError);
      opLog.system(
        `[dockbot] the rollback to ${good.sha.slice(0, 8)} failed too: ${oneLine(reason)}`,
      );
      throw error;
    }
    throw new RolledBackError(`${why}; rolled back to ${good.sha.slice(0, 8)}`, good.sha, back, {
      cause: error,
    });
  }
}

/**
 * A manual rollback (docs/api.md, "Rollback"): back to the verified deploy before the current
 * one (the one named when it was asked for); the deploys newer than it are dropped and their
 * kept images go.
 */
export async function rollback(ctx: StepContext, version: VersionRecord): Promise<VersionRecord> {
  const { op, project, opLog } = ctx;
  const plan = planRollback(historyOf(version), op.sha);
  if (!plan.ok) throw new Error(`cannot roll back: ${plan.reason}`);
  opLog.system(
    `[dockbot] rolling back to ${plan.target.sha.slice(0, 8)} (verified ${plan.target.deployedAt})`,
  );
  const back = await restoreDeploy(ctx, version, plan.target);
  // It passed its health check again just now: that is when it was last deployed (what idle
  // stop counts from, docs/api.md "Idle stop").
  const deployedAt = new Date().toISOString();
  const [, ...older] = plan.kept;
  const saved = await ctx.saveVersion(back, {
    lastGood: { sha: plan.target.sha, deployedAt },
    goodDeploys: [{ ...plan.target, deployedAt }, ...older],
  });
  const dir = ctx.deps.git.checkoutDir(project.name, version.name);
  await pruneDeploys(ctx, saved, dir, [...plan.dropped, ...plan.kept], plan);
  return saved;
}

/** What prepare-model.ts needs of the runner: the store, the port range and its probe. */
function modelDeps(ctx: StepContext) {
  return {
    compose: ctx.deps.compose,
    store: ctx.deps.store,
    portRange: ctx.options.portRange ?? { from: 20000, to: 29999 },
    ...(ctx.options.probePort === undefined ? {} : { probePort: ctx.options.probePort }),
  };
}

/**
 * Checks out `sha`, renders, builds, starts and waits for health; a deploy that passes is
 * kept (keepDeploy) and becomes the version's `sha`, `deployedSha` and `lastGood`.
 */
async function deployCommit(
  ctx: StepContext,
  version: VersionRecord,
  sha: string,
): Promise<VersionRecord> {
  const { project, io, opLog } = ctx;
  const { git, compose } = ctx.deps;
  opLog.system(`[dockbot] checking out ${sha}`);
  const dir = await git.checkout(project.name, version.name, sha, io);
  throwIfAborted(io);
  const file = await compose.findComposeFile(dir, project.composeFile);
  const target = { dir, file, projectName: version.composeProject, env: project.env, ...io };
  opLog.system(`[dockbot] rendering ${file} (project ${version.composeProject})`);
  const prepared = await prepareModel(modelDeps(ctx), project, version, target, (line) =>
    opLog.system(line),
  );
  throwIfAborted(io);
  const withPorts = await ctx.saveVersion(version, {
    ports: prepared.ports,
    ...(prepared.primaryService === undefined ? {} : { primaryService: prepared.primaryService }),
  });
  opLog.system(
    `[dockbot] docker compose up (project ${version.composeProject}, from ${path.basename(prepared.rendered)})`,
  );
  // Checked before anything starts: a healthPath with no port to ask can never pass.
  const probe = healthProbeOf(ctx, withPorts);
  await ctx.makeRoom(version);
  await compose.up({ ...target, rendered: prepared.rendered });
  // docs/api.md, "Health": the up counts only once its services are healthy.
  await waitForHealth(
    { compose },
    {
      projectName: version.composeProject,
      timeoutSeconds: ctx.options.healthTimeoutSeconds ?? 120,
      ...probe,
      io,
      log: (line) => opLog.system(line),
    },
  );
  const running = await ctx.saveVersion(withPorts, {
    state: "running",
    deployedSha: sha,
    sha,
    urls: urlsOf(ctx.options.publicUrl, prepared.ports),
  });
  return keepDeploy(ctx, running, dir, sha);
}

/**
 * A verified deploy is kept (docs/api.md, "Rollback"): its built images under the version's
 * own `good-<sha12>` tags, its rendered model beside the checkout, its entry at the head of
 * the version's `goodDeploys` (and `lastGood`); what is no longer kept goes. Keeping is
 * best effort: the deploy stands when a tag cannot be made (a rollback then builds).
 */
async function keepDeploy(
  ctx: StepContext,
  version: VersionRecord,
  checkoutDir: string,
  sha: string,
): Promise<VersionRecord> {
  const { op, io, opLog } = ctx;
  const { compose } = ctx.deps;
  const model = await readCurrentModel(checkoutDir);
  const images: Record<string, string> = {};
  for (const [service, image] of Object.entries(builtImagesByService(model))) {
    const kept = keptImageTag(image, sha);
    try {
      await compose.tagImage(image, kept, io);
      images[service] = kept;
    } catch (error) {
      opLog.system(
        `[dockbot] could not keep the image of ${service} as ${kept}: ${oneLine(String((error as Error).message ?? error))}`,
      );
    }
  }
  await saveKeptModel(checkoutDir, sha, {
    model,
    ports: version.ports,
    ...(version.primaryService === undefined ? {} : { primaryService: version.primaryService }),
  });
  const deployedAt = new Date().toISOString();
  const previous = historyOf(version);
  const change = recordGoodDeploy(previous, { sha, deployedAt, operationId: op.id, images });
  const kept = Object.values(images);
  opLog.system(
    `[dockbot] kept this deploy${kept.length > 0 ? ` (${kept.join(", ")})` : ""}; ${change.kept.length} verified deploy${change.kept.length === 1 ? "" : "s"} kept`,
  );
  const saved = await ctx.saveVersion(version, {
    lastGood: { sha, deployedAt },
    goodDeploys: change.kept,
  });
  await pruneDeploys(ctx, saved, checkoutDir, [...previous, ...change.kept], change);
  return saved;
}

/**
 * Removes the kept images and models of deploys no longer kept: only tags of the version's own
 * built repositories that no kept deploy names (deploy-history.ts). A failure is said in the
 * log and changes nothing of the operation's outcome.
 */
async function pruneDeploys(
  ctx: StepContext,
  version: VersionRecord,
  checkoutDir: string,
  seen: readonly GoodDeploy[],
  change: { kept: GoodDeploy[]; dropped: GoodDeploy[] },
): Promise<void> {
  const { io, opLog } = ctx;
  const { compose } = ctx.deps;
  const keptShas = new Set(change.kept.map((d) => d.sha));
  await removeKeptModels(
    checkoutDir,
    change.dropped.map((d) => d.sha).filter((s) => !keptShas.has(s)),
  );
  const repos = versionImageRepos(seen, version.composeProject);
  if (repos.length === 0) return;
  try {
    const gone = removableTags(await compose.imageTags(repos, io), change.kept, repos);
    if (gone.length === 0) return;
    opLog.system(`[dockbot] removing the images of older deploys: ${gone.join(", ")}`);
    await compose.removeImageTags(gone, io);
  } catch (error) {
    opLog.system(
      `[dockbot] removing the images of older deploys failed: ${oneLine((error as Error).message ?? String(error))}`,
    );
  }
}

/**
 * Brings a kept deploy back (docs/api.md, "Rollback"): checks out its commit, runs its kept
 * model, re-tags its kept images to the names the model runs and starts without building;
 * only when its images are gone it builds them again (said in the log), and when that fails
 * too the error names what is missing. Then the health wait, as for any up. The version's
 * `sha` (what its ref asks for) and its history stay; the caller changes the history.
 */
async function restoreDeploy(
  ctx: StepContext,
  version: VersionRecord,
  deploy: GoodDeploy,
): Promise<VersionRecord> {
  const { project, io, opLog } = ctx;
  const { git, compose } = ctx.deps;
  const short = deploy.sha.slice(0, 8);
  opLog.system(`[dockbot] checking out ${deploy.sha}`);
  const dir = await git.checkout(project.name, version.name, deploy.sha, io);
  throwIfAborted(io);
  const file = await compose.findComposeFile(dir, project.composeFile);
  const target = { dir, file, projectName: version.composeProject, env: project.env, ...io };
  let rendered: string;
  let ports: VersionPort[];
  let primaryService: string | undefined;
  const kept = await readKeptModel(dir, deploy.sha);
  if (kept) {
    opLog.system(`[dockbot] running the kept model of ${short}`);
    rendered = await restoreKeptModel(dir, kept);
    ports = kept.ports;
    primaryService = kept.primaryService;
  } else {
    // Kept from before models were kept, or removed by hand: rendered again as for an up.
    opLog.system(`[dockbot] no kept model of ${short}: rendering ${file} again`);
    const prepared = await prepareModel(modelDeps(ctx), project, version, target, (line) =>
      opLog.system(line),
    );
    rendered = prepared.rendered;
    ports = prepared.ports;
    primaryService = prepared.primaryService;
  }
  throwIfAborted(io);
  const withPorts = await ctx.saveVersion(version, {
    ports,
    ...(primaryService === undefined ? {} : { primaryService }),
  });
  const probe = healthProbeOf(ctx, withPorts);
  const running = builtImagesByService(await readCurrentModel(dir));
  const wanted = Object.entries(running).map(([service, image]) => ({
    service,
    image,
    kept: deploy.images?.[service],
  }));
  const keptRepos = wanted.flatMap((w) => (w.kept === undefined ? [] : [imageRepoOf(w.kept)]));
  const present = new Set(await compose.imageTags([...new Set(keptRepos)], io));
  const missing = wanted.filter((w) => w.kept === undefined || !present.has(w.kept));
  await ctx.makeRoom(version);
  const upTarget = { ...target, rendered };
  if (missing.length === 0) {
    for (const w of wanted) {
      if (w.kept === undefined) continue;
      opLog.system(`[dockbot] ${w.service} runs the kept image ${w.kept} as ${w.image}`);
      await compose.tagImage(w.kept, w.image, io);
    }
    opLog.system(
      `[dockbot] docker compose up without building (project ${version.composeProject})`,
    );
    await compose.up(upTarget, { build: false });
  } else {
    const names = missing.map((w) => w.kept ?? `${w.service} (never kept)`).join(", ");
    opLog.system(`[dockbot] the kept images of ${short} are gone (${names}): building them again`);
    try {
      await compose.up(upTarget);
    } catch (error) {
      throw new Error(
        `the rollback to ${short} cannot start: its kept images are gone (${names}) and building them again failed: ${oneLine((error as Error).message ?? String(error))}`,
        { cause: error },
      );
    }
  }
  // Docker runs the kept deploy from here on, whatever its health check says.
  const started = await ctx.saveVersion(withPorts, { deployedSha: deploy.sha });
  await waitForHealth(
    { compose },
    {
      projectName: version.composeProject,
      timeoutSeconds: ctx.options.healthTimeoutSeconds ?? 120,
      ...probe,
      io,
      log: (line) => opLog.system(line),
    },
  );
  // Built again and verified: kept again under the tags the deploy recorded.
  for (const w of missing) {
    if (w.kept === undefined) continue;
    try {
      await compose.tagImage(w.image, w.kept, io);
      opLog.system(`[dockbot] kept the rebuilt image of ${w.service} as ${w.kept}`);
    } catch (error) {
      opLog.system(
        `[dockbot] could not keep the rebuilt image of ${w.service} as ${w.kept}: ${oneLine((error as Error).message ?? String(error))}`,
      );
    }
  }
  return ctx.saveVersion(started, { state: "running", urls: urlsOf(ctx.options.publicUrl, ports) });
}

/**
 * The project's `healthPath` on the primary service's first published TCP port (docs/api.md,
 * "Health"), asked where the preview router reaches that service (its ServiceLocator,
 * preview-upstream.ts: the published address, or the container's address on the preview
 * network when dockbot runs in a container); without a locator, on this host at the host port.
 * An error when the version has no such port to ask.
 */
function healthProbeOf(ctx: StepContext, version: VersionRecord): { probe?: HealthProbe } {
  const { healthPath } = ctx.project;
  if (healthPath === undefined) return {};
  const port = version.ports.find(
    (p) => p.service === version.primaryService && p.protocol === "tcp",
  );
  if (!port) {
    throw new HealthCheckError(
      `healthPath ${healthPath} is set but the version has no primary service with a published TCP port`,
    );
  }
  const { locator } = ctx.deps;
  const url = async (): Promise<string | undefined> => {
    if (!locator) return `http://127.0.0.1:${port.hostPort}${healthPath}`;
    const at = await locator.locate(version.composeProject, port.service, port.target);
    if (!at) return undefined;
    const host = at.host.includes(":") ? `[${at.host}]` : at.host;
    return `http://${host}:${at.port}${healthPath}`;
  };
  return { probe: { what: `${healthPath} of ${port.service}`, url } };
}
