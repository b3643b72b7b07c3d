export { ResumableSocket } from "./resumable-socket.js";
export { Backoff } from "./backoff.js";
export { gatewayUrl } from "./gateway-url.js";
export type StarSessionOptions = import("./star-session.js").StarSessionOptions;
export type StarSessionEventMap = import("./star-session.js").StarSessionEventMap;
export type ResumableOptions = import("./resumable-socket.js").ResumableOptions;
export type ResumableSocketEventMap = import("./resumable-socket.js").ResumableSocketEventMap;
export { JoinRefused, StarSession } from "./star-session.js";
