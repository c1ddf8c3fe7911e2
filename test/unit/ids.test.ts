import { describe, expect, it } from "vitest";
import { z } from "zod";
import { newId } from "../../src/ids.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("newId", () => {
  it("makes RFC 9562 version 7 UUIDs that carry their creation time", () => {
    const at = Date.UTC(2026, 10, 30, 12, 0, 0, 123);
    const id = newId(at);
    expect(id).toMatch(UUID_V7);
    expect(z.uuid().safeParse(id).success).toBe(true);
    expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(at);
  });

  it("sorts ids of later milliseconds after earlier ones, as text", () => {
    const ids = [3, 1, 2, 1000, 999_999].map((ms) => newId(1_700_000_000_000 + ms));
    const byTime = [...ids].sort((a, b) => (a < b ? -1 : 1));
    expect(byTime).toStrictEqual([ids[1], ids[2], ids[0], ids[3], ids[4]]);
  });

  it("never repeats", () => {
    const at = Date.now();
    const ids = new Set(Array.from({ length: 10_000 }, () => newId(at)));
    expect(ids.size).toBe(10_000);
  });
});
