// Static files of the dashboard, with a content hash: pages link `?v=<hash>`, so the files can
// be cached for a long time and a new release is fetched at once.
import { createHash } from "node:crypto";
import { APP_CSS } from "./app-css.js";
import { APP_JS } from "./app-js.js";

export { APP_CSS, APP_JS };

export const ASSET_VERSION = createHash("sha256")
  .update(APP_CSS)
  .update(APP_JS)
  .digest("hex")
  .slice(0, 12);
