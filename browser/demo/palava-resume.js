/**
 * palava-client on Switchboard's ResumableSocket (/client/switchboard.js): the mesh demo's
 * signaling survives a dropped connection without palava-client knowing. palava-client
 * makes its socket in `WebSocketChannel.setupWebsocket` with the global `WebSocket`; the
 * channel class put in its place here has a ResumableSocket stand in for it during that
 * call only. Nothing of palava-client is changed or copied.
 * @module
 */

import { ResumableSocket } from '/client/switchboard.js';

/**
 * @typedef {object} PalavaResumeOptions
 * @property {boolean} resumable  false: plain sockets (a drop means rejoining)
 * @property {Record<string, unknown>} join  fields for every join_room (a join `token`)
 * @property {(socket: ResumableSocket) => void} onSocket  each new socket, to listen to
 */

/**
 * @param {any} palava  the palava-client namespace (palava.bundle.js's global)
 * @param {PalavaResumeOptions} options
 */
export function useResumableSockets(palava, options) {
  const Base = palava.WebSocketChannel;
  palava.WebSocketChannel = class extends Base {
    setupWebsocket() {
      const native = globalThis.WebSocket;
      globalThis.WebSocket = /** @type {any} */ (class extends ResumableSocket {
        /** @param {string} url */
        constructor(url) {
          super(url, { resumable: options.resumable, join: options.join });
        }
      });
      try {
        super.setupWebsocket();
      } finally {
        globalThis.WebSocket = native;
      }
      options.onSocket(this.socket);
    }
  };
}

/**
 * What palava-client can take of a joined_room's `ice_servers`: one STUN URL and a list of
 * TURN URLs (it reads the TURN credentials from joined_room itself).
 * @param {RTCIceServer[] | undefined} servers
 * @returns {{stun?: string, turnUrls?: string[]}}
 */
export function palavaIceOptions(servers) {
  const urls = (servers ?? []).flatMap((server) => [server.urls].flat());
  const stun = urls.find((url) => url.startsWith('stun:'));
  const turnUrls = urls.filter((url) => /^turns?:/.test(url));
  return { ...(stun ? { stun } : {}), ...(turnUrls.length ? { turnUrls } : {}) };
}
