// The same-origin rule for Socket.io handshakes is the one of src/auth/same-origin.ts (also used
// by the API's cookie requests and the dashboard's forms): defined once there.
export { originAllowed } from "../auth/same-origin.js";
