// npm run bench -- <name> [...]: each benchmark prints its figures and the ratio
// to a baseline measured in the same run. No benchmark asserts anything: figures go to the README.
import { argv, exit, stderr, stdout } from "node:process";

const benches: Record<string, () => Promise<void>> = {
  deploy: async () => (await import("./deploy.js")).benchDeploy(),
  webhooks: async () => (await import("./webhooks.js")).benchWebhooks(),
  logs: async () => (await import("./logs.js")).benchLogs(),
  router: async () => (await import("./router.js")).benchRouter(),
  render: async () => (await import("./render.js")).benchRender(),
  scale: async () => (await import("./scale.js")).benchScale(),
};

const names = argv.slice(2).filter((a) => !a.startsWith("-"));
const chosen = names.length > 0 ? names : Object.keys(benches);
for (const name of chosen) {
  const bench = benches[name];
  if (!bench) {
    stderr.write(`unknown benchmark '${name}': one of ${Object.keys(benches).join(", ")}\n`);
    exit(2);
  }
  stdout.write(`\n== bench ${name} ==\n`);
  await bench();
}
exit(0);
