// A project deletion asked for by an older dockbot (a setting `project-delete:<projectId>`
// holding when) is found on the project (`deletion`) once a newer dockbot opens the store, in
// both stores; the setting is gone.
import Database from "better-sqlite3";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openMongoStore } from "../../src/store/mongo-store.js";
import { MIGRATIONS, openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { checkMongo, testDatabase, type TestDatabase } from "../support/mongo.js";
import { describeWithServices } from "../support/services.js";
import { makeProject } from "../support/store-contract.js";

const requestedAt = "2026-11-30T08:00:00.000Z";

describe("an older dockbot's pending deletion in SQLite", () => {
  let dir: string;
  let store: Store | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-deletion-mark-"));
  });
  afterEach(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("moves the mark onto the project, leaves other projects alone, and drops the setting", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    // The schema as the dockbot before this migration left it, with its mark.
    const before = MIGRATIONS.findIndex((m) => m.includes("ADD COLUMN deletion"));
    expect(before).toBeGreaterThan(0);
    const db = new Database(file);
    for (const migration of MIGRATIONS.slice(0, before)) db.exec(migration);
    db.pragma(`user_version = ${before}`);
    const marked = makeProject({ name: "marked" });
    const other = makeProject({ name: "other" });
    const insert = db.prepare(
      `INSERT INTO projects (id, name, repo_url, auto_deploy, env, webhook_secret, created_at,
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const p of [marked, other]) {
      insert.run(
        p.id,
        p.name,
        p.repoUrl,
        JSON.stringify(p.autoDeploy),
        JSON.stringify(p.env),
        p.webhookSecret,
        p.createdAt,
        p.updatedAt,
      );
    }
    const setting = db.prepare("INSERT INTO settings (key, value) VALUES (?, ?)");
    setting.run(`project-delete:${marked.id}`, requestedAt);
    // A mark an older dockbot cleared after finishing (it wrote "").
    setting.run(`project-delete:${other.id}`, "");
    db.close();

    store = await openSqliteStore(file);
    expect((await store.getProject(marked.id))?.deletion).toEqual({
      requestedAt,
      state: "deleting",
    });
    expect(await store.getProject(other.id)).not.toHaveProperty("deletion");
    expect(await store.getSetting(`project-delete:${marked.id}`)).toBeUndefined();
    expect(await store.getSetting(`project-delete:${other.id}`)).toBeUndefined();
  });
});

describeWithServices([await checkMongo()], "an older dockbot's pending deletion in MongoDB", () => {
  let database: TestDatabase;
  let store: Store | undefined;
  beforeEach(() => {
    database = testDatabase();
  });
  afterEach(async () => {
    await store?.close();
    await database.drop();
  });

  it("moves the mark onto the project when the store opens, and drops the setting", async () => {
    const older = await openMongoStore(database.url);
    const marked = makeProject({ name: "marked" });
    const other = makeProject({ name: "other" });
    await older.createProject(marked);
    await older.createProject(other);
    await older.setSetting(`project-delete:${marked.id}`, requestedAt);
    await older.setSetting(`project-delete:${other.id}`, "");
    await older.close();

    store = await openMongoStore(database.url);
    expect((await store.getProject(marked.id))?.deletion).toEqual({
      requestedAt,
      state: "deleting",
    });
    expect(await store.getProject(other.id)).not.toHaveProperty("deletion");
    expect(await store.getSetting(`project-delete:${marked.id}`)).toBeUndefined();
    expect(await store.getSetting(`project-delete:${other.id}`)).toBeUndefined();
  });
});
