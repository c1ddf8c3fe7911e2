// The merge request note's text (src/gitlab/mr-note.ts): what a reviewer reads, and the hidden
// marker dockbot finds its note by.
import { describe, expect, it } from "vitest";
import { hasNoteMarker, mergeRequestNoteBody, noteKey } from "../../src/gitlab/mr-note.js";

const key = noteKey("01-project", "mr-7");

describe("the merge request note", () => {
  it("shows the preview link, the state, the short commit and the log link, and ends with the marker", () => {
    const body = mergeRequestNoteBody({
      key,
      versionName: "mr-7",
      url: "http://mr-7--shop.localhost:3001",
      state: "running",
      sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
      logUrl: "https://dockbot.example.com/operations/op-1",
    });
    expect(body).toContain("[http://mr-7--shop.localhost:3001](http://mr-7--shop.localhost:3001)");
    expect(body).toContain("**running** at `da156088`");
    expect(body).toContain("(https://dockbot.example.com/operations/op-1)");
    expect(body.trimEnd().endsWith("<!-- dockbot:version:01-project/mr-7 -->")).toBe(true);
    expect(hasNoteMarker(body, key)).toBe(true);
    expect(hasNoteMarker(body, noteKey("01-project", "mr-8"))).toBe(false);
  });

  it("keeps an error's markup from rendering", () => {
    const body = mergeRequestNoteBody({
      key,
      versionName: "mr-7",
      state: "failed",
      error: "build failed: <img src=x> [click](http://evil) `x`",
    });
    expect(body).toContain("\\<img src=x\\>");
    expect(body).toContain("\\[click\\](http://evil)");
    expect(body).not.toMatch(/(^|[^\\])<img/);
    expect(body).toContain("no published port yet");
  });

  it("says dockbot stopped an idle version, keeping its preview link (which offers to turn it on)", () => {
    const body = mergeRequestNoteBody({
      key,
      versionName: "mr-7",
      url: "http://mr-7--shop.localhost:3001",
      state: "stopped",
      sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    });
    expect(body).toContain("**stopped by dockbot: nobody used it for a while");
    expect(body).toContain("[http://mr-7--shop.localhost:3001](http://mr-7--shop.localhost:3001)");
    expect(hasNoteMarker(body, key)).toBe(true);
  });

  it("says the preview is gone once the version is removed", () => {
    const body = mergeRequestNoteBody({
      key,
      versionName: "mr-7",
      state: "removed",
      sha: "abc1234def",
    });
    expect(body).toContain("The preview of this merge request is gone");
    expect(body).not.toContain("Preview:");
    expect(hasNoteMarker(body, key)).toBe(true);
  });
});
