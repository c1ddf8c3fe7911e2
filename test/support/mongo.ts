// The MongoDB server the store's integration tests use: FerretDB started by
// scripts/services/ferretdb.sh on 127.0.0.1:27018, or any server DOCKBOT_TEST_MONGODB_URL
// names. Every test works in a database of its own (random name) and drops it afterwards, so a
// real `mongod` holding other data can be used too.
import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import type { ServiceCheck } from "./services.js";

export const mongoTestUrl = process.env.DOCKBOT_TEST_MONGODB_URL ?? "mongodb://127.0.0.1:27018/";

/** `url` with its database path replaced by `database` (host list and options kept). */
export function withDatabase(url: string, database: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(url);
  if (!match?.[1]) throw new Error(`not a MongoDB URL: ${url}`);
  return `${match[1]}/${encodeURIComponent(database)}${match[2] ?? ""}`;
}

/** A database name no other test uses. */
function randomDatabaseName(): string {
  return `dockbot_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** A database of a test's own on the test server: its name, its URL, and drop() to remove it. */
export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export function testDatabase(): TestDatabase {
  const name = randomDatabaseName();
  return {
    name,
    url: withDatabase(mongoTestUrl, name),
    drop: () => dropDatabase(mongoTestUrl, name),
  };
}

async function dropDatabase(url: string, database: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.db(database).dropDatabase();
  } finally {
    await client.close();
  }
}

export async function checkMongo(url = mongoTestUrl): Promise<ServiceCheck> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
  try {
    await client.db("admin").command({ ping: 1 });
    return { ok: true, reason: "" };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: `no MongoDB server answers ping at ${url} (${why})` };
  } finally {
    await client.close();
  }
}
