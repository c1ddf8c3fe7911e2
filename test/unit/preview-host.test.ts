import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import {
  MAX_HOST_LABEL,
  parsePreviewHost,
  previewDomain,
  previewHostLabel,
  previewScheme,
  previewUrlFor,
  versionPreviewUrl,
} from "../../src/preview/preview-host.js";

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

describe("preview host labels", () => {
  it("names a version <version>--<project> and a service <service>--<version>--<project>", () => {
    expect(previewHostLabel("shop", "main")).toBe("main--shop");
    expect(previewHostLabel("shop", "mr-42", "api")).toBe("api--mr-42--shop");
  });

  it("writes a compose service name as a host name part: lowercase, hyphens for the rest", () => {
    expect(previewHostLabel("shop", "main", "Web_Front.1")).toBe("web-front-1--main--shop");
  });

  it("keeps a label of exactly 63 characters as it is", () => {
    const version = "v".repeat(MAX_HOST_LABEL - "--shop".length);
    const label = previewHostLabel("shop", version);
    expect(label).toBe(`${version}--shop`);
    expect(label).toHaveLength(63);
  });

  it("shortens a longer label to 63 characters with a hash, still one DNS label", () => {
    const project = "a-project-with-a-rather-long-name";
    const version = "feature-login-with-a-long-branch-name";
    const label = previewHostLabel(project, version);
    expect(label).toHaveLength(63);
    expect(label).toMatch(DNS_LABEL);
    expect(label).toMatch(/^feature-login-with-a-long-branch-name--a-project-with-a-[0-9a-f]{7}$/);
  });

  it("gives two long names with the same first 55 characters different labels", () => {
    const common = "x".repeat(60);
    const a = previewHostLabel("shop", `${common}-a`);
    const b = previewHostLabel("shop", `${common}-b`);
    expect(a).not.toBe(b);
    expect(a.slice(0, 55)).toBe(b.slice(0, 55));
  });

  it("never ends a shortened label with a hyphen before the hash", () => {
    // The cut falls right after "--": the hyphens are dropped, not doubled before the hash.
    const label = previewHostLabel("p".repeat(40), "v".repeat(53));
    expect(label).toMatch(DNS_LABEL);
    expect(label).not.toContain("---");
  });
});

describe("preview URLs", () => {
  it("puts the label where DOCKBOT_PREVIEW_URL has its *", () => {
    expect(previewUrlFor("http://*.localhost:3001", "shop", "main")).toBe(
      "http://main--shop.localhost:3001",
    );
    expect(previewUrlFor("https://*.preview.example.com", "shop", "main", "api")).toBe(
      "https://api--main--shop.preview.example.com",
    );
  });

  it("reads the domain and scheme of the pattern", () => {
    expect(previewDomain("http://*.localhost:3001")).toBe("localhost");
    expect(previewDomain("https://*.Preview.Example.com/")).toBe("preview.example.com");
    expect(previewScheme("https://*.preview.example.com")).toBe("https");
    expect(previewScheme("http://*.localhost:3001")).toBe("http");
  });

  const settings = { port: 3001, url: "http://*.localhost:3001" };
  const tcp = [{ service: "web", target: 8080, protocol: "tcp" as const, hostPort: 20001 }];

  it("gives a version with a published TCP port its preview URL", () => {
    expect(versionPreviewUrl(settings, "shop", { name: "main", ports: tcp })).toBe(
      "http://main--shop.localhost:3001",
    );
  });

  it("gives null while the version has no published TCP port or the router is off", () => {
    expect(versionPreviewUrl(settings, "shop", { name: "main", ports: [] })).toBeNull();
    const udp = [{ service: "dns", target: 53, protocol: "udp" as const, hostPort: 20002 }];
    expect(versionPreviewUrl(settings, "shop", { name: "main", ports: udp })).toBeNull();
    expect(versionPreviewUrl({ ...settings, port: 0 }, "shop", { name: "main", ports: tcp })).toBe(
      null,
    );
    expect(versionPreviewUrl(undefined, "shop", { name: "main", ports: tcp })).toBeNull();
  });
});

describe("reading a Host header", () => {
  it.each([
    ["main--shop.localhost:3001", "main--shop"],
    ["MAIN--Shop.LocalHost", "main--shop"],
    ["api--main--shop.localhost.", "api--main--shop"],
  ])("reads %s as the label %s", (host, label) => {
    expect(parsePreviewHost(host, "localhost")).toEqual({ kind: "label", label });
  });

  it.each([
    ["localhost:3001", "the bare domain"],
    ["main--shop.example.com", "another domain"],
    ["a.main--shop.localhost", "a nested name"],
    ["127.0.0.1:3001", "an address"],
    ["[::1]:3001", "an IPv6 address"],
  ])("tells %s (%s) apart as not a preview host", (host) => {
    expect(parsePreviewHost(host, "localhost").kind).toBe("foreign");
  });

  it.each<[string | undefined, string]>([
    [undefined, "no Host"],
    ["", "an empty Host"],
    ["main_shop.localhost", "an underscore"],
    ["-main.localhost", "a leading hyphen"],
    ["main-.localhost", "a trailing hyphen"],
    ["main..localhost", "an empty label"],
    [`${"x".repeat(64)}.localhost`, "a label over 63 characters"],
    ["main--shop.localhost:30a1", "a port that is no number"],
    ["main--shop.localhost:3001:1", "two ports"],
    ["ma in.localhost", "a space"],
    ["[zz]:80", "a broken IPv6 literal"],
  ])("calls %s (%s) malformed", (host) => {
    expect(parsePreviewHost(host, "localhost").kind).toBe("malformed");
  });
});

describe("preview configuration", () => {
  it("defaults to port 3001, http://*.localhost:3001 and the automatic upstream", () => {
    const r = parseConfig({});
    expect(r.ok && r.config.previewPort).toBe(3001);
    expect(r.ok && r.config.previewUrl).toBe("http://*.localhost:3001");
    expect(r.ok && r.config.previewUpstream).toEqual({ mode: "auto" });
  });

  it("follows DOCKBOT_PREVIEW_PORT in the default URL, and 0 turns the router off", () => {
    const r = parseConfig({ DOCKBOT_PREVIEW_PORT: "8081" });
    expect(r.ok && r.config.previewUrl).toBe("http://*.localhost:8081");
    const off = parseConfig({ DOCKBOT_PREVIEW_PORT: "0" });
    expect(off.ok && off.config.previewPort).toBe(0);
  });

  it("takes an https pattern and published:<address>", () => {
    const r = parseConfig({
      DOCKBOT_PREVIEW_URL: "https://*.preview.example.com/",
      DOCKBOT_PREVIEW_UPSTREAM: "published:10.0.0.7",
    });
    expect(r.ok && r.config.previewUrl).toBe("https://*.preview.example.com");
    expect(r.ok && r.config.previewUpstream).toEqual({ mode: "published", address: "10.0.0.7" });
  });

  it.each([
    ["DOCKBOT_PREVIEW_URL", "http://preview.example.com"],
    ["DOCKBOT_PREVIEW_URL", "http://x*.example.com"],
    ["DOCKBOT_PREVIEW_URL", "ftp://*.example.com"],
    ["DOCKBOT_PREVIEW_URL", "*.example.com"],
    ["DOCKBOT_PREVIEW_PORT", "70000"],
    ["DOCKBOT_PREVIEW_UPSTREAM", "sideways"],
  ])("refuses %s=%s with one line naming the variable", (name, value) => {
    const r = parseConfig({ [name]: value });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toContain(name);
    }
  });
});
