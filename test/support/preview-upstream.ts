// What the preview router's tests and benchmark need: the upstream image (a static Go binary from
// test/fixtures/preview-upstream, FROM dockbot-test-base: busybox has no WebSocket server), a
// request with a chosen Host header, and a minimal WebSocket client (Node 20 has none built in).
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import type { ServiceCheck } from "./services.js";

const source = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../fixtures/preview-upstream/main.go",
);

export async function checkGo(): Promise<ServiceCheck> {
  const r = await execa("go", ["version"], { reject: false, timeout: 20_000, stdin: "ignore" });
  return r.exitCode === 0
    ? { ok: true, reason: "" }
    : { ok: false, reason: "no Go toolchain (`go version` fails) to build the upstream" };
}

/**
 * Builds the upstream into `tag` (`/upstream`, listening on $PORT, answering $BODY). Returns the
 * function that removes the image again.
 */
export async function buildUpstreamImage(tag: string): Promise<() => Promise<void>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-preview-upstream-"));
  try {
    await execa(
      "go",
      ["build", "-trimpath", "-ldflags=-s -w", "-o", path.join(dir, "upstream"), source],
      {
        env: { CGO_ENABLED: "0" },
        timeout: 300_000,
      },
    );
    await writeFile(
      path.join(dir, "Dockerfile"),
      'FROM dockbot-test-base\nCOPY upstream /upstream\nCMD ["/upstream"]\n',
    );
    await execa("docker", ["build", "-q", "-t", tag, dir], { timeout: 300_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return async () => {
    await execa("docker", ["image", "rm", "-f", tag], { reject: false });
  };
}

export interface HostAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET (or `method`) 127.0.0.1:port with the given Host header, as a browser on *.localhost. */
export function requestWithHost(
  port: number,
  host: string,
  urlPath = "/",
  headers: Record<string, string> = {},
  method = "GET",
): Promise<HostAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: urlPath,
        method,
        headers: { ...headers, host },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer from ${host} in 15 s`)));
    req.end();
  });
}

/** Asks until the answer has `status` (a fresh container needs a moment). */
export async function untilStatus(
  ask: () => Promise<HostAnswer>,
  status: number,
  timeoutMs = 20_000,
): Promise<HostAnswer> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const answer = await ask().catch((error: unknown) => ({
      status: -1,
      headers: {},
      body: String(error),
    }));
    if (answer.status === status || Date.now() > until) return answer;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface WebsocketAnswer {
  /** The handshake's status: 101 when upgraded. */
  status: number;
  /** The first message the server sent back (when upgraded). */
  echoed?: string;
  /** The response body when refused. */
  body: string;
  /** The connection was closed by the other side after a refusal. */
  closed: boolean;
}

/** Opens a WebSocket to `urlPath` with the given Host, sends `message`, reads one message back. */
export function websocketEcho(
  port: number,
  host: string,
  message: string,
  urlPath = "/ws",
): Promise<WebsocketAnswer> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64");
    const socket = net.connect(port, "127.0.0.1");
    let buffer = Buffer.alloc(0);
    let status = 0;
    let headEnd = -1;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`WebSocket to ${host} did not finish in 15 s`));
    }, 15_000);
    const finish = (answer: WebsocketAnswer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on("connect", () => {
      socket.write(
        [
          `GET ${urlPath} HTTP/1.1`,
          `Host: ${host}`,
          "Upgrade: websocket",
          "Connection: Upgrade",
          `Sec-WebSocket-Key: ${key}`,
          "Sec-WebSocket-Version: 13",
          "",
          "",
        ].join("\r\n"),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (headEnd === -1) {
        headEnd = buffer.indexOf("\r\n\r\n");
        if (headEnd === -1) return;
        const head = buffer.subarray(0, headEnd).toString("latin1");
        status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        if (status === 101) {
          const accept = /sec-websocket-accept: *(\S+)/i.exec(head)?.[1];
          const expected = createHash("sha1")
            .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
            .digest("base64");
          if (accept !== expected) {
            clearTimeout(timer);
            socket.destroy();
            reject(new Error(`bad Sec-WebSocket-Accept: ${accept ?? "none"}`));
            return;
          }
          socket.write(maskedTextFrame(message));
        }
      }
      if (status === 101) {
        const frame = buffer.subarray(headEnd + 4);
        if (frame.length < 2) return;
        const length = frame[1]! & 0x7f;
        if (length >= 126 || frame.length < 2 + length) return;
        finish({
          status,
          echoed: frame.subarray(2, 2 + length).toString("utf8"),
          body: "",
          closed: false,
        });
      }
    });
    socket.on("end", () => {
      if (status !== 101) {
        finish({
          status,
          body: headEnd === -1 ? "" : buffer.subarray(headEnd + 4).toString("utf8"),
          closed: true,
        });
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, "utf8");
  if (payload.length >= 126) throw new Error("test messages are short");
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}
