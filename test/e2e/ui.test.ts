// The web dashboard in a real browser (Debian's headless Chromium driven by playwright-core)
// against a real dockbot: git over the test sshd, Docker Compose on the real engine, Socket.io
// for the live log. Screenshots of the main pages land in test-artifacts/ (gitignored).
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  ADMIN_TOKEN,
  dockerObjects,
  startDockbot,
  webApp,
  type DockbotHarness,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { createTestRepo, uniqueName, type TestRepo } from "../support/git-server.js";
import {
  checkDeployServices,
  describeWithServices,
  type ServiceCheck,
} from "../support/services.js";

const CHROMIUM = "/usr/bin/chromium";
const chromiumCheck: ServiceCheck = existsSync(CHROMIUM)
  ? { ok: true, reason: "" }
  : { ok: false, reason: `no ${CHROMIUM} (scripts/services/chromium.sh installs it)` };
const checks = [chromiumCheck, ...(await checkDeployServices())];

const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const ENV_SECRET = "ui-e2e-env-secret-5d1c";
const BUILD_TIMEOUT = 180_000;

describeWithServices(checks, "web dashboard in a browser", () => {
  let h: DockbotHarness;
  let repo: TestRepo;
  let browser: Browser;
  let baseUrl: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    h = await startDockbot({ DOCKBOT_COMPOSE: "v2" });
    repo = await createTestRepo("ui", webApp("hello from the dashboard"));

    baseUrl = h.baseUrl;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  });

  afterAll(async () => {
    // Whatever a failed test left running: delete it through the API, so Docker is left clean.
    if (h) {
      const projects = await h.api<Array<{ name: string }>>("GET", "/api/projects");
      for (const p of projects.body ?? []) {
        const versions = await h.api<VersionJson[]>("GET", `/api/projects/${p.name}/versions`);
        for (const v of versions.body ?? []) {
          const op = await h.api<{ id: string }>(
            "DELETE",
            `/api/projects/${p.name}/versions/${v.name}`,
          );
          if (op.status === 202) await h.waitForOperation(op.body.id);
        }
      }
    }
    for (const c of contexts) await c.close();
    await browser?.close();
    await h?.close();
    await repo?.remove();
  });

  async function newPage(
    options: { javaScriptEnabled?: boolean; phone?: boolean } = {},
  ): Promise<Page> {
    const context = await browser.newContext({
      javaScriptEnabled: options.javaScriptEnabled ?? true,
      viewport: options.phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
      ...(options.phone ? { deviceScaleFactor: 2, isMobile: true, hasTouch: true } : {}),
    });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    return page;
  }

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });

  async function signIn(page: Page, next = "/"): Promise<void> {
    await page.goto(`${baseUrl}${next}`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("#token", ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${baseUrl}${next}`), page.click("button[type=submit]")]);
  }

  async function createProject(page: Page, name: string): Promise<void> {
    await page.goto(`${baseUrl}/new-project`);
    await page.fill("#name", name);
    await page.fill("#repoUrl", repo.sshUrl);
    await page.fill("#env", `SECRET_TOKEN=${ENV_SECRET}`);
    await Promise.all([
      page.waitForURL(`${baseUrl}/projects/${name}?done=created`),
      page.click("button:has-text('Create project')"),
    ]);
  }

  async function addVersion(page: Page, ref: string): Promise<void> {
    await page.fill("input[name=ref]", ref);
    await Promise.all([
      page.waitForURL(/done=version-added/),
      page.click("button:has-text('Add version')"),
    ]);
  }

  /** Clicks a version's action button and lands on the operation page it queued. */
  async function versionAction(page: Page, label: string): Promise<void> {
    await Promise.all([
      page.waitForURL(/\/operations\/[0-9a-f-]{36}$/),
      page
        .locator("tr[data-version-row]")
        .getByRole("button", { name: label, exact: true })
        .click(),
    ]);
  }

  it("refuses a wrong token and stays on the sign-in page", async () => {
    const page = await newPage();
    await page.goto(`${baseUrl}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("#token", "not-the-admin-token");
    await page.click("button[type=submit]");
    await expect
      .poll(() => page.locator(".error").textContent())
      .toContain("not dockbot's admin token");
    expect(new URL(page.url()).pathname).toBe("/login");
    await shot(page, "ui-login-refused");
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([]);
  });

  it("creates a project, turns a version on with its log arriving live, turns it off and deletes it", async () => {
    const page = await newPage();
    const name = uniqueName("uiapp");
    await signIn(page);
    await shot(page, "ui-dashboard-empty");

    await page.goto(`${baseUrl}/new-project`);
    await shot(page, "ui-new-project");
    await createProject(page, name);
    await expect.poll(() => page.locator(".notice").textContent()).toContain("Project created");
    expect(await page.content()).not.toContain(ENV_SECRET);
    await addVersion(page, "main");
    await shot(page, "ui-project");

    // Turn on: the operation page shows the log as it is written, without a reload.
    await versionAction(page, "Turn on");
    // A marker on the document: it survives only if the page is never reloaded.
    await page.evaluate('document.documentElement.setAttribute("data-same-document", "yes")');
    const linesAtArrival = await page.locator("#log .line[data-seq]").count();
    await page.locator("#op-status.status-succeeded").waitFor({ timeout: BUILD_TIMEOUT });
    await page.locator("[data-version-state].state-running").waitFor();
    expect(await page.locator("html").getAttribute("data-same-document")).toBe("yes");
    const seqs = (await page.locator("#log .line[data-seq]").all()).map(async (line) =>
      Number(await line.getAttribute("data-seq")),
    );
    const seqNumbers = await Promise.all(seqs);
    const opId = new URL(page.url()).pathname.split("/").at(-1) ?? "";
    expect(seqNumbers).toEqual((await h.dockbot.store.getLogLines(opId)).map((l) => l.seq));
    expect(seqNumbers.length).toBeGreaterThan(linesAtArrival);
    // In order, none twice: what the page shows is the log as stored.
    expect(seqNumbers).toEqual([...seqNumbers].sort((a, b) => a - b));
    expect(new Set(seqNumbers).size).toBe(seqNumbers.length);
    expect(await page.locator("#cancel-form").isHidden()).toBe(true);
    const log = (await page.locator("#log").textContent()) ?? "";
    expect(log).toMatch(/sees token \*\*\*/);
    expect(await page.content()).not.toContain(ENV_SECRET);
    await shot(page, "ui-operation");

    const version = await h.api<VersionJson>("GET", `/api/projects/${name}/versions/main`);
    expect(version.body.state).toBe("running");
    expect((await dockerObjects(version.body.composeProject)).running.length).toBe(1);

    // The dashboard lists the version with its state.
    await page.goto(`${baseUrl}/`);
    await expect
      .poll(() => page.locator(`[data-version-state="${version.body.id}"]`).textContent())
      .toBe("running");
    await shot(page, "ui-dashboard");

    // Turn off.
    await page.goto(`${baseUrl}/projects/${name}`);
    await versionAction(page, "Turn off");
    await page.locator("#op-status.status-succeeded").waitFor({ timeout: BUILD_TIMEOUT });
    await page.locator("[data-version-state].state-off").waitFor();
    expect((await dockerObjects(version.body.composeProject)).running).toEqual([]);

    // History: both operations of the version, on the operation page.
    expect(await page.locator("table tbody tr").count()).toBe(2);

    // Delete, after a confirmation page that names what goes.
    await page.goto(`${baseUrl}/projects/${name}`);
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "ui-project-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator("tr[data-version-row]").getByRole("link", { name: "Delete" }).click();
    await page.waitForURL(/\/versions\/main\/delete$/);
    const confirm = (await page.locator("main").textContent()) ?? "";
    for (const thing of ["containers", "images built for it", "networks", "volumes", "checkout"]) {
      expect(confirm).toContain(thing);
    }
    await shot(page, "ui-delete");
    await Promise.all([
      page.waitForURL(/\/operations\//),
      page.click("button:has-text('Delete main')"),
    ]);
    await page.locator("#op-status.status-succeeded").waitFor({ timeout: BUILD_TIMEOUT });
    const objects = await dockerObjects(version.body.composeProject);
    expect(objects.containers).toEqual([]);
    expect(objects.volumes).toEqual([]);
    await page.goto(`${baseUrl}/projects/${name}`);
    expect(await page.locator("tr[data-version-row]").count()).toBe(0);
  });

  it("comes back to an operation page after signing in, as GitLab status links need", async () => {
    const api = await h.api<{ id: string }>("POST", "/api/projects", {
      name: uniqueName("uilink"),
      repoUrl: repo.sshUrl,
    });
    expect(api.status).toBe(201);
    const version = await h.api<{ name: string }>("POST", `/api/projects/${api.body.id}/versions`, {
      ref: "main",
    });
    const op = await h.api<{ id: string }>(
      "POST",
      `/api/projects/${api.body.id}/versions/${version.body.name}/off`,
    );
    expect(op.status).toBe(202);
    await h.waitForOperation(op.body.id);
    const page = await newPage({ phone: true });
    await signIn(page, `/operations/${op.body.id}`);
    await page.locator("#op-status.status-succeeded").waitFor();
    await shot(page, "ui-operation-phone");
  });

  it("creates a project and turns a version on with JavaScript off, through plain forms", async () => {
    const page = await newPage({ javaScriptEnabled: false });
    const name = uniqueName("uinojs");
    await signIn(page);
    await createProject(page, name);
    await addVersion(page, "main");
    await versionAction(page, "Turn on");
    const until = Date.now() + BUILD_TIMEOUT;
    while ((await page.locator("#op-status").textContent()) !== "succeeded") {
      expect(await page.locator("#op-status").textContent()).toMatch(/queued|running/);
      if (Date.now() > until) throw new Error("turn on did not succeed in time");
      await page.waitForTimeout(1000);
      await page.reload();
    }
    expect((await page.locator("#log").textContent()) ?? "").toMatch(/sees token \*\*\*/);
    await page.locator("[data-version-state].state-running").waitFor();
    const version = await h.api<VersionJson>("GET", `/api/projects/${name}/versions/main`);
    expect((await dockerObjects(version.body.composeProject)).running.length).toBe(1);
    await shot(page, "ui-operation-nojs");
  });
});
