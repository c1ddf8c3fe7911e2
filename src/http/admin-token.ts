import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "../store/store.js";

const SETTING = "admin-token-sha256";

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export interface AdminToken {
  /** Set only on the first start without DOCKBOT_ADMIN_TOKEN: print it once, never again. */
  generated?: string;
  /** Names the token in force without revealing it (a hash of its hash): sessions remember it. */
  id: string;
  /** Constant-time check of a presented token (hash against hash: no length leak). */
  verify(token: string | undefined): boolean;
}

/**
 * The API's bearer token: DOCKBOT_ADMIN_TOKEN when set, else one generated on first start.
 * Only its SHA-256 is stored (a random 32-byte token needs no slow hash).
 */
export async function adminToken(
  store: Store,
  configured: string | undefined,
): Promise<AdminToken> {
  let expected: Buffer;
  let generated: string | undefined;
  if (configured !== undefined) {
    expected = digest(configured);
    await store.setSetting(SETTING, expected.toString("hex"));
  } else {
    const stored = await store.getSetting(SETTING);
    if (stored) {
      expected = Buffer.from(stored, "hex");
    } else {
      generated = randomBytes(32).toString("base64url");
      expected = digest(generated);
      await store.setSetting(SETTING, expected.toString("hex"));
    }
  }
  const verify = (token: string | undefined) =>
    token !== undefined && token.length > 0 && timingSafeEqual(digest(token), expected);
  const id = createHash("sha256").update(expected).digest("hex").slice(0, 32);
  return generated === undefined ? { id, verify } : { generated, id, verify };
}
