import { describe, expect, it } from "vitest";
import { minFreeBytes, parseByteSize, parseFreeSpaceRule } from "../../src/deploy/byte-sizes.js";

describe("byte sizes", () => {
  it.each([
    ["1048576", 1048576],
    ["512m", 512 * 1024 ** 2],
    ["512M", 512 * 1024 ** 2],
    ["1.5g", 1.5 * 1024 ** 3],
    ["2GiB", 2 * 1024 ** 3],
    ["10GB", 10 * 1024 ** 3],
    ["3 k", 3 * 1024],
    ["1t", 1024 ** 4],
    ["7b", 7],
  ])("reads %s as %d bytes", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(["", "m", "-1g", "1x", "1.g", "ten"])("refuses %j", (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });

  it("reads a free-space rule as a percentage or bytes, and refuses more than 100%", () => {
    expect(parseFreeSpaceRule("10%")).toEqual({ percent: 10 });
    expect(parseFreeSpaceRule("0.5 %")).toEqual({ percent: 0.5 });
    expect(parseFreeSpaceRule("5g")).toEqual({ bytes: 5 * 1024 ** 3 });
    expect(parseFreeSpaceRule("101%")).toBeUndefined();
    expect(parseFreeSpaceRule("%")).toBeUndefined();
  });

  it("turns a rule into the bytes to keep free on a file system of a given size", () => {
    expect(minFreeBytes({ percent: 10 }, 1000)).toBe(100);
    expect(minFreeBytes({ percent: 10 }, 1001)).toBe(101);
    expect(minFreeBytes({ bytes: 4096 }, 10)).toBe(4096);
  });
});
