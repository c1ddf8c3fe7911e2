// Sizes people write in configuration: `DOCKBOT_DISK_MIN_FREE` (docs/api.md, "Configuration")
// and a project's `limits.memory` (docs/api.md, "Resources"). One rule for both, defined here.

/** `512m`, `1.5g`, `2GiB`, `10GB`, `1048576`: a number with an optional binary unit. */
export const BYTE_SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i;

const UNIT_POWER: Record<string, number> = { "": 0, b: 0, k: 1, m: 2, g: 3, t: 4 };

/** Bytes of a size as BYTE_SIZE_PATTERN reads it (units are powers of 1024, as Docker's). */
export function parseByteSize(text: string): number | undefined {
  const match = BYTE_SIZE_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const power = UNIT_POWER[(match[2] ?? "").toLowerCase().charAt(0)] ?? 0;
  return Math.round(Number(match[1]) * 1024 ** power);
}

/** Free space to keep: a number of bytes, or a percentage of the file system. */
export type FreeSpaceRule = { bytes: number } | { percent: number };

/** `10%` or a byte size; undefined when it is neither (or a percentage over 100). */
export function parseFreeSpaceRule(text: string): FreeSpaceRule | undefined {
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text.trim());
  if (percent) {
    const value = Number(percent[1]);
    return value <= 100 ? { percent: value } : undefined;
  }
  const bytes = parseByteSize(text);
  return bytes === undefined ? undefined : { bytes };
}

/** How many bytes a rule asks to keep free on a file system of `totalBytes`. */
export function minFreeBytes(rule: FreeSpaceRule, totalBytes: number): number {
  return "bytes" in rule ? rule.bytes : Math.ceil((totalBytes * rule.percent) / 100);
}
