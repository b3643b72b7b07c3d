/**
 * Switchboard's browser library: plain ES modules, no build step, no dependencies.
 * Every gateway serves it at `/client/switchboard.js`; a project may also copy the
 * folder it lives in (gateway/client/) and import it from there.
 *
 *     import { StarSession } from '/client/switchboard.js';
 *
 * @module
 */

export { JoinRefused, StarSession } from './star-session.js';
export { PeerLink, MAX_ATTEMPTS } from './peer-link.js';
export { SignalingChannel } from './signaling.js';
export { ResumableSocket } from './resumable-socket.js';
export { iceServersFor } from './ice-servers.js';
