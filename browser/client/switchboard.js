/**
 * Switchboard's browser library: plain ES modules, no build step, no dependencies.
 * Every gateway serves it at `/client/switchboard.js`; a project may also copy the
 * folder it lives in (browser/client/) and import it from there.
 *
 *     import { StarSession } from '/client/switchboard.js';
 *
 * This module is its public API; the other modules are its inside.
 * @module
 */

export { JoinRefused, StarSession } from './star-session.js';
export { ResumableSocket } from './resumable-socket.js';
export { Backoff } from './backoff.js';
export { gatewayUrl } from './gateway-url.js';

// Types for TypeScript (in the npm package's declarations; nothing at run time).
/** @typedef {import('./star-session.js').StarSessionOptions} StarSessionOptions */
/** @typedef {import('./star-session.js').StarSessionEventMap} StarSessionEventMap */
/** @typedef {import('./resumable-socket.js').ResumableOptions} ResumableOptions */
/** @typedef {import('./resumable-socket.js').ResumableSocketEventMap} ResumableSocketEventMap */
