// Ids of the records dockbot creates (projects, versions, operations, deliveries).
//
// UUIDv7 (RFC 9562): a UUID whose first 48 bits are the creation time in milliseconds. Opaque to
// users like any UUID, but new ids sort after older ones, so a B-tree keyed by them (SQLite's
// primary-key indexes, MongoDB's _id) grows at its right edge: a group of inserts touches a few
// pages instead of one page per insert, which at webhook-burst rates is most of a commit's cost.
//
// Made from node's randomUUID (v4, drawn from a pooled entropy buffer) with the time written over
// its first 48 bits and the version nibble set to 7; the variant bits and the remaining 74
// random bits are v4's. The `uuid` package's v7 draws 16 fresh bytes through WebCrypto per id,
// which costs more here than the rest of a webhook delivery's bookkeeping.
import { randomUUID } from "node:crypto";

export function newId(now = Date.now()): string {
  const time = now.toString(16).padStart(12, "0");
  // randomUUID(): xxxxxxxx-xxxx-4xxx-Yxxx-xxxxxxxxxxxx; index 14 is the version nibble.
  return `${time.slice(0, 8)}-${time.slice(8)}-7${randomUUID().slice(15)}`;
}
