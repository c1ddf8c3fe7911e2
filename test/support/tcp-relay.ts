import net from "node:net";

export interface TcpRelay {
  port: number;
  /** Cuts every relayed connection and refuses new ones until resume(). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay on a loopback port to a real server, so a test can make that server unreachable
 * for one client (and bring it back) without touching the server.
 */
export function startTcpRelay(host: string, targetPort: number): Promise<TcpRelay> {
  return startRelay({ host, port: targetPort });
}

/** The same relay to any stream socket, e.g. `{path: "/var/run/docker.sock"}`. */
export async function startRelay(target: net.NetConnectOpts): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    pause() {
      down = true;
      cut();
    },
    resume() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        cut();
      }),
  };
}
