// The composition root: the only place that reads process.env, builds every service once, starts
// HTTP and the runner, and owns shutdown.
import { serve, type ServerType } from "@hono/node-server";
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { pino, type Logger } from "pino";
import { parseConfig, type Config } from "./config.js";
import { createCompose } from "./deploy/compose.js";
import { DeployService } from "./deploy/deploy-service.js";
import { EventBus } from "./deploy/events.js";
import { createDiskProbe, createDockerDisk } from "./deploy/disk.js";
import { createDiskUsage, type DiskUsage } from "./deploy/disk-usage.js";
import { createGit } from "./deploy/git.js";
import { createHygiene, type Hygiene } from "./deploy/hygiene.js";
import { createRetention, type Retention } from "./deploy/retention.js";
import { IdleStop } from "./deploy/idle-stop.js";
import { autoStopOf } from "./deploy/project-settings.js";
import { Runner } from "./deploy/runner.js";
import { ensureSshKey } from "./deploy/ssh-key.js";
import { createGitlabApi } from "./gitlab/gitlab-call.js";
import { createGitlabOnboarding } from "./gitlab/onboarding.js";
import { createReportLog } from "./gitlab/report-log.js";
import { createGitlabReporter } from "./gitlab/reporter.js";
import { createReviewApps } from "./gitlab/review-apps.js";
import { createAuth } from "./auth/auth.js";
import type { RateLimiterOptions } from "./auth/rate-limit.js";
import { adminToken } from "./http/admin-token.js";
import { createApp } from "./http/app.js";
import { attachSocketServer, type AttachedSocketServer } from "./realtime/socket-server.js";
import { openMongoStore } from "./store/mongo-store.js";
import { StoreUnavailableError, type Store } from "./store/store.js";
import { openSqliteStore } from "./store/sqlite-store.js";
import type { VersionRecord } from "./store/types.js";
import { versionPreviewUrl, type PreviewSettings } from "./preview/preview-host.js";
import { createPreviewRouter, type PreviewRouter } from "./preview/preview-router.js";
import { PreviewTargets } from "./preview/preview-targets.js";
import { createServiceLocator } from "./preview/preview-upstream.js";
import { RequestTracker } from "./preview/request-tracker.js";
import { uiRoutes } from "./ui/ui-routes.js";
import { keepConnectionsAlive } from "./http/keep-alive.js";
import { gitlabReceiver } from "./webhooks/gitlab-receiver.js";

export interface Dockbot {
  config: Config;
  store: Store;
  bus: EventBus;
  service: DeployService;
  runner: Runner;
  /** Turns idle versions off (docs/api.md, "Idle stop and limits"); `check()` looks now. */
  idleStop: IdleStop;
  /** Preview requests per version (lastRequestAt); unset while the preview router is off. */
  requests?: RequestTracker;
  /** Disk hygiene (DOCKBOT_DISK_MIN_FREE), retention (DOCKBOT_RETENTION_DAYS), disk use. */
  hygiene: Hygiene;
  retention: Retention;
  diskUsage: DiskUsage;
  app: ReturnType<typeof createApp>;
  /** The token, when this start generated it (first start without DOCKBOT_ADMIN_TOKEN). */
  generatedToken?: string;
  /** Listens on config.host:config.port; resolves with the bound port. */
  listen(): Promise<number>;
  /** The preview router's bound port once listening (undefined while off). */
  previewPort?: number;
  /** Stops HTTP and the runner (waiting up to graceMs for running operations), closes the store. */
  close(graceMs?: number): Promise<void>;
}

export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({
    level: config.logLevel,
    redact: {
      paths: [
        "token",
        "*.token",
        "webhookSecret",
        "*.webhookSecret",
        "env",
        "*.env",
        "headers.authorization",
      ],
      censor: "***",
    },
  });
}

async function openStore(config: Config, logger: Logger): Promise<Store> {
  if (!config.mongodbUrl) return openSqliteStore(path.join(config.dataDir, "dockbot.sqlite"));
  const url = config.mongodbUrl;
  const waitMs = config.mongodbStartWaitSeconds * 1000;
  const until = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await openMongoStore(url, {
        connectTimeoutMs: Math.min(5000, Math.max(waitMs, 500)),
        logger,
      });
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || Date.now() > until) {
        throw new Error(
          `MongoDB at DOCKBOT_MONGODB_URL is unreachable after ${config.mongodbStartWaitSeconds} s (DOCKBOT_MONGODB_START_WAIT): ${
            error instanceof Error ? error.message : String(error)
          }`,
          { cause: error },
        );
      }
      logger.warn({ attempt }, "MongoDB unreachable; retrying");
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * attempt, 5000)));
    }
  }
}

/** Builds dockbot from a parsed config. Tests and benchmarks start it in-process this way. */
/** What a test may set that no configuration variable does. */
export interface BuildOptions {
  /** Failed token checks allowed per address (src/auth/rate-limit.ts); a fuzzer makes many. */
  rateLimit?: RateLimiterOptions;
  /** The clock of idle stop and of preview request times (ms); tests move it. */
  now?: () => number;
  /**
   * The Docker engine runs on this machine (DOCKER_HOST unset or a unix socket): its data
   * root's free space can be read here. Default true.
   */
  dockerEngineLocal?: boolean;
}

export async function buildDockbot(
  config: Config,
  logger: Logger,
  options: BuildOptions = {},
): Promise<Dockbot> {
  const store = await openStore(config, logger);
  const bus = new EventBus();
  const sshKey = await ensureSshKey(config.dataDir);
  const token = await adminToken(store, config.adminToken);
  const auth = createAuth({
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    store,
    adminToken: token,
    publicUrl: config.publicUrl,
    logger,
    admins: config.admins,
    ...(config.gitlabUrl === undefined ? {} : { gitlabUrl: config.gitlabUrl }),
    ...(config.gitlabToken === undefined ? {} : { gitlabToken: config.gitlabToken }),
    ...(config.gitlabOauth === undefined ? {} : { oauth: config.gitlabOauth }),
  });
  const git = createGit({
    dataDir: config.dataDir,
    privateKeyPath: sshKey.privateKeyPath,
    sshStrict: config.sshStrict,
  });
  const compose = createCompose({ mode: config.compose });
  // A project's default branch for idle stop and the running limit: a replica that never
  // deployed the project clones its mirror first (git.ts defaultBranchCloning).
  const defaultBranch = async (name: string): Promise<string | undefined> => {
    const project = await store.getProjectByName(name);
    return project ? git.defaultBranchCloning(name, project.repoUrl) : undefined;
  };
  const service = new DeployService({
    store,
    bus,
    logger,
    classifyRef: (project, ref) => git.classifyRef(project, ref),
  });
  const secrets = [config.adminToken, config.gitlabToken, config.gitlabOauth?.clientSecret].filter(
    (s): s is string => s !== undefined,
  );
  if (token.generated) secrets.push(token.generated);
  // Where the preview router reaches a service; the up's healthPath probe asks there too.
  const locator = createServiceLocator({ upstream: config.previewUpstream, logger });
  const runner = new Runner({
    store,
    bus,
    logger,
    git,
    compose,
    service,
    options: {
      concurrency: config.concurrency,
      operationTimeoutSeconds: config.operationTimeoutSeconds,
      healthTimeoutSeconds: config.healthTimeoutSeconds,
      logMaxBytes: config.logMaxBytes,
      publicUrl: config.publicUrl,
      leaseMs: config.leaseSeconds * 1000,
      secrets,
      portRange: config.portRange,
      maxRunning: config.maxRunning,
    },
    defaultBranch,
    locator,
  });
  service.attachRunner(runner);
  const preview: PreviewSettings | undefined =
    config.previewPort === 0 ? undefined : { port: config.previewPort, url: config.previewUrl };
  const previewTargets = preview
    ? new PreviewTargets({
        store,
        bus,
        logger,
        locator,
      })
    : undefined;
  const requests = preview
    ? new RequestTracker({
        store,
        logger,
        ...(options.now === undefined ? {} : { now: options.now }),
      })
    : undefined;
  const previewRouter: PreviewRouter | undefined =
    preview && previewTargets
      ? createPreviewRouter({
          settings: preview,
          host: config.host,
          publicUrl: config.publicUrl,
          targets: previewTargets,
          logger,
          ...(requests ? { requests } : {}),
          // The page of a version that is off says why and since when.
          notRunning: async (version) => {
            const [last, project] = await Promise.all([
              service.lastOperation(version.id),
              store.getProject(version.projectId),
            ]);
            const idleHours = project
              ? autoStopOf(project, config.idleHours).idleHours
              : config.idleHours;
            return last === undefined ? { idleHours } : { idleHours, last };
          },
        })
      : undefined;
  const idleStop = new IdleStop({
    store,
    requestDown: (version, trigger) => service.requestOperationUnlessBusy(version, "down", trigger),
    defaultBranch,
    defaultIdleHours: config.idleHours,
    ...(requests ? { recentRequests: requests } : {}),
    ...(options.now === undefined ? {} : { now: options.now }),
    logger,
  });
  // GitLab (docs/gitlab.md): one client for statuses, review apps and onboarding, all off the
  // deploy's path; nothing of it exists without DOCKBOT_GITLAB_URL and DOCKBOT_GITLAB_TOKEN.
  const gitlab =
    config.gitlabUrl && config.gitlabToken
      ? {
          url: config.gitlabUrl,
          token: config.gitlabToken,
          api: createGitlabApi({ url: config.gitlabUrl, token: config.gitlabToken }),
          reportLog: createReportLog(store),
        }
      : undefined;
  const onboarding = gitlab
    ? createGitlabOnboarding({
        store,
        bus,
        api: gitlab.api,
        gitlabUrl: gitlab.url,
        token: gitlab.token,
        publicUrl: config.publicUrl,
        publicKey: sshKey.publicKey,
        logger,
      })
    : undefined;
  // Disk (docs/api.md, "Configuration"): free space, hygiene below DOCKBOT_DISK_MIN_FREE,
  // retention after DOCKBOT_RETENTION_DAYS, each version's disk use for the dashboard.
  const dockerDisk = createDockerDisk();
  const diskProbe = createDiskProbe({
    docker: dockerDisk,
    dataDir: config.dataDir,
    engineLocal: options.dockerEngineLocal ?? true,
  });
  const hygiene = createHygiene({
    store,
    docker: dockerDisk,
    probe: diskProbe,
    minFree: config.diskMinFree,
    logger,
    bus,
  });
  const retention = createRetention({
    store,
    logger,
    retentionDays: config.retentionDays,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const diskUsage = createDiskUsage({
    store,
    docker: dockerDisk,
    checkoutDir: (project, version) => git.checkoutDir(project, version),
    logger,
    bus,
  });
  const app = createApp({
    publicUrl: config.publicUrl,
    idleHours: config.idleHours,
    store,
    service,
    bus,
    token,
    auth,
    sshKey,
    compose,
    disk: diskProbe,
    logger,
    ...(preview ? { preview } : {}),
    ...(onboarding ? { gitlab: onboarding } : {}),
  });
  app.route(
    "/webhooks",
    gitlabReceiver({
      service,
      store,
      logger,
      // Who may deploy a merge request by opening it (docs/api.md, "Who may do what").
      mergeRequestRefusal: (project, authorId) => auth.mergeRequestRefusal(project, authorId),
    }),
  );
  app.route(
    "/",
    uiRoutes({
      service,
      store,
      token,
      auth,
      sshKey: { publicKey: sshKey.publicKey, fingerprint: sshKey.fingerprint },
      publicUrl: config.publicUrl,
      logger,
      diskUse: (projectId) => diskUsage.forProject(projectId),
      ...(preview ? { preview } : {}),
      ...(onboarding ? { gitlab: onboarding } : {}),
    }),
  );
  const reporter = gitlab
    ? createGitlabReporter({
        bus,
        store,
        gitlabUrl: gitlab.url,
        token: gitlab.token,
        publicUrl: config.publicUrl,
        logger,
        api: gitlab.api,
        reportLog: gitlab.reportLog,
      })
    : undefined;
  const reviewApps = gitlab
    ? createReviewApps({
        bus,
        store,
        api: gitlab.api,
        token: gitlab.token,
        publicUrl: config.publicUrl,
        logger,
        reportLog: gitlab.reportLog,
        // GitLab's "View app": the preview URL, else the first published port's URL.
        externalUrlFor: (version, project) =>
          versionPreviewUrl(preview, project.name, version) ?? version.urls[0],
      })
    : undefined;

  let server: ServerType | undefined;
  let realtime: AttachedSocketServer | undefined;
  const dockbot: Dockbot = {
    config,
    store,
    bus,
    service,
    runner,
    idleStop,
    ...(requests ? { requests } : {}),
    hygiene,
    retention,
    diskUsage,
    app,
    async listen() {
      await runner.start();
      idleStop.start();
      retention.start();
      hygiene.start();
      diskUsage.start();
      const port = await new Promise<number>((resolve, reject) => {
        server = serve(
          { fetch: app.fetch, port: config.port, hostname: config.host },
          (info: AddressInfo) => resolve(info.port),
        );
        server.once("error", reject);
        keepConnectionsAlive(server as HttpServer);
        realtime = attachSocketServer(server as HttpServer, {
          bus,
          store,
          token,
          auth,
          logger,
          publicUrl: config.publicUrl,
          ...(config.redisUrl === undefined ? {} : { redisUrl: config.redisUrl }),
          ...(previewTargets
            ? {
                versionLinks: (v: VersionRecord) => {
                  const project = previewTargets.projectName(v.projectId);
                  return project === undefined ? undefined : { project, preview };
                },
              }
            : {}),
        });
      });
      await realtime?.ready;
      if (previewRouter && previewTargets) {
        await previewTargets.warm();
        requests?.start();
        dockbot.previewPort = await previewRouter.listen();
      }
      return port;
    },
    async close(graceMs = 10_000) {
      // Sockets first: open websockets would keep the HTTP server from closing.
      await realtime?.close();
      await previewRouter?.close();
      previewTargets?.close();
      // The last preview requests are written before the store closes.
      await requests?.close();
      await idleStop.stop();
      await Promise.all([hygiene.stop(), retention.stop(), diskUsage.stop()]);
      if (server) {
        const s = server;
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        if ("closeAllConnections" in s) s.closeAllConnections();
        await closed;
      }
      await runner.stop(graceMs);
      for (const part of [reporter, reviewApps, onboarding]) {
        if (!part) continue;
        part.stop();
        await part.idle();
      }
      await store.close();
    },
  };
  if (token.generated) dockbot.generatedToken = token.generated;
  return dockbot;
}

async function main(): Promise<void> {
  const parsed = parseConfig(process.env);
  if (!parsed.ok) {
    for (const line of parsed.errors)
      process.stderr.write(`dockbot: invalid configuration: ${line}\n`);
    process.exit(2);
  }
  const { config } = parsed;
  const logger = createLogger(config);
  const dockbot = await buildDockbot(config, logger, {
    // A remote engine (tcp://, ssh://): its data root is not on this machine's disks.
    dockerEngineLocal: !/^(tcp|ssh|https?):\/\//.test(process.env.DOCKER_HOST ?? ""),
  });
  if (dockbot.generatedToken) {
    // Printed once, on the first start; only its hash is stored.
    process.stdout.write(
      `\n  dockbot admin token (shown once, keep it): ${dockbot.generatedToken}\n` +
        `  use it as: Authorization: Bearer <token>\n\n`,
    );
  }
  const port = await dockbot.listen();
  logger.info(
    {
      port,
      previewPort: dockbot.previewPort ?? "off",
      host: config.host,
      store: dockbot.store.kind,
      dataDir: config.dataDir,
    },
    "dockbot listening",
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: no new work; running operations get 10 s");
    dockbot
      .close(10_000)
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`dockbot: failed to start: ${message.split("\n")[0] ?? ""}\n`);
    process.exit(1);
  });
}
