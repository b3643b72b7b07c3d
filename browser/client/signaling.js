/**
 * The signaling socket: one WebSocket to a Switchboard gateway, speaking the palava
 * protocol and Switchboard's extensions (docs/protocol.md). Requests go out as methods; every
 * frame the server sends comes in as a `frame` event, and the end of the socket as `close`.
 * `removed` {reason} comes before the `close` when the app removed the peer
 * (docs/protocol.md, "Removal"): no resume is tried then.
 * @module
 */

import { emit } from './events.js';
import { ResumableSocket } from './resumable-socket.js';

/**
 * @typedef {object} Status  what the server keeps of a peer (docs/protocol.md, update_status)
 * @property {string} [name]
 * @property {string} [user_agent]
 */

/**
 * @typedef {object} PeerEntry  a member as the server shows it (joined_room.peers, new_peer,
 *   host_changed.peers)
 * @property {string} peer_id
 * @property {Status} status
 * @property {string} [user]  from its join token, when it had one: see `Identity`
 * @property {Record<string, unknown>} [info]
 */

/**
 * @typedef {object} Identity  who the app says a peer is (docs/protocol.md, "Identities and
 *   roles"): set by the service from the peer's join token, never by the peer itself
 * @property {string} [user]  the app's id for the user (several peers may share one)
 * @property {Record<string, unknown>} [info]  public data from the app (a display name...)
 */

/**
 * @typedef {{event: string} & Record<string, any>} Frame  a server frame, as JSON
 */

export class SignalingChannel extends EventTarget {
  /** @type {ResumableSocket | null} */
  #socket = null;

  /**
   * @param {string} url  the gateway's WebSocket address, e.g. `wss://signal.example/`
   * @param {boolean} [resumable]  join resumable and resume after a drop (default true):
   *   a `close` comes only when a resume could not be had; `resuming` and `resumed`
   *   tell of one under way
   */
  constructor(url, resumable = true) {
    super();
    this.url = url;
    this.resumable = resumable;
  }

  /**
   * Open the socket. Resolves once it is open; rejects when it closes before.
   * @returns {Promise<void>}
   */
  open() {
    return new Promise((resolve, reject) => {
      const socket = new ResumableSocket(this.url, { resumable: this.resumable });
      this.#socket = socket;
      for (const type of ['resuming', 'resumed', 'removed']) {
        socket.addEventListener(type, (event) => {
          if (this.#socket === socket) {
            emit(this, type, /** @type {CustomEvent} */ (event).detail);
          }
        });
      }
      socket.onopen = () => resolve();
      socket.addEventListener('frame', (event) => {
        // Parsed by the socket already; every frame of the server's names its event.
        const frame = /** @type {CustomEvent<Record<string, any>>} */ (event).detail;
        if (typeof frame.event === 'string') {
          emit(this, 'frame', /** @type {Frame} */ (frame));
        }
      });
      socket.onclose = (closed) => {
        reject(new Error(`cannot reach ${this.url} (close code ${closed.code})`));
        if (this.#socket === socket) {
          this.#socket = null;
          emit(this, 'close', { code: closed.code, reason: closed.reason });
        }
      };
    });
  }

  /** Whether frames can be sent now. */
  get isOpen() {
    return this.#socket !== null && this.#socket.readyState === WebSocket.OPEN;
  }

  /** Whether the socket dropped and is being resumed (frames sent meanwhile wait). */
  get resuming() {
    return this.#socket !== null && this.#socket.resuming;
  }

  /**
   * Send one client frame; false when the socket is not open (the frame is not kept).
   * @param {string} event
   * @param {Record<string, unknown>} [fields]
   */
  send(event, fields = {}) {
    if (!this.isOpen || this.#socket === null) {
      return false;
    }
    this.#socket.send(JSON.stringify({ ...fields, event }));
    return true;
  }

  /**
   * `data` to one peer of the room; the server adds `sender_id` (docs/protocol.md, send_to_peer).
   * @param {string} peerId
   * @param {{event: string} & Record<string, unknown>} data
   */
  sendToPeer(peerId, data) {
    return this.send('send_to_peer', { peer_id: peerId, data });
  }

  /** Close the socket; no `close` event follows a close asked for here. */
  close() {
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null) {
      socket.close(1000);
    }
  }
}
