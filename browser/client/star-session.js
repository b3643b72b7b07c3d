/**
 * StarSession: a one-to-many WebRTC session on a Switchboard star room (docs/protocol.md,
 * "Star rooms"), as the p2p_streams_channel gem's P2pController runs one: a host talks to
 * every client over a link of its own and relays between them; clients talk to the host.
 *
 *     const session = new StarSession({ room: 'class-42', status: { name: 'Ann' }, stream });
 *     session.addEventListener('message', (e) => show(e.detail.senderId, e.detail.data));
 *     session.addEventListener('stream', (e) => play(e.detail.peerId, e.detail.stream));
 *     await session.start();
 *     session.send({ text: 'hello' });
 *
 * The server decides who is host (the member present longest) and tells everyone when that
 * changes; then the new host offers to every client and the session carries on. Events
 * (CustomEvent, data in `detail`):
 *   negotiating, connecting, connected, disconnected  {peerId}  a link's progress (on a
 *                        client, the link to the host; on the host, each client's)
 *   message   {senderId, data}   data sent with `send`, by the host or relayed by it
 *   peers     {states}           peer id -> the link's RTCPeerConnection connectionState,
 *                                as the host sees it (the host itself: 'connected')
 *   host      {hostId}           the host, once joined and after every change
 *   stream    {peerId, stream}   media from the other side of a link
 *   error     {message}          the server refused something, or a link was given up
 *   server_message  {data}       a message from the app (docs/protocol.md, "Admin API")
 *   removed   {reason}           the app ended this peer's membership: 'removed' (this
 *                                peer), 'closed' (the whole room) or 'expired' (the room's
 *                                deadline); `closed` follows, and the session never rejoins
 *   closed                       the session ended (`close`, a removal, or a refusal on
 *                                rejoining)
 *   resuming, resumed            the signaling socket dropped and is being resumed (the
 *                                links go on; nobody else sees a thing), and then was
 *
 * Where the service requires join tokens, `identityOf` gives who the app says each member
 * is (its `user` and `info`, docs/protocol.md "Identities and roles"): unlike a status,
 * which every peer chooses for itself, that can be trusted.
 * @module
 */

import { Backoff } from './backoff.js';
import { emit, listen } from './events.js';
import { gatewayUrl } from './gateway-url.js';
import { iceServersFor } from './ice-servers.js';
import { isObject } from './json.js';
import { PeerLink } from './peer-link.js';
import { SignalingChannel } from './signaling.js';

/** @typedef {import('./signaling.js').Status} Status */
/** @typedef {import('./signaling.js').PeerEntry} PeerEntry */
/** @typedef {import('./signaling.js').Identity} Identity */
/** @typedef {import('./signaling.js').Frame} Frame */
/** @typedef {import('./peer-link.js').Heartbeat} Heartbeat */

/**
 * @typedef {object} StarSessionOptions
 * @property {string} room  the room's name (at most 50 characters)
 * @property {string} [url]  the gateway's WebSocket address; default: this page's host, `/`
 * @property {Status} [status]  `name` and `user_agent`, as the server keeps them
 * @property {MediaStream | null} [stream]  the host's reaches every client, a client's the host
 * @property {RTCIceServer[]} [iceServers]  used unless the server sends `ice_servers`
 * @property {string} [token]  a join token, where the service requires one
 * @property {Heartbeat | null} [heartbeat]  DataChannel heartbeats; default none
 * @property {boolean} [keepSignaling]  default true; false closes a client's socket once it
 *   is connected to the host (it rejoins when that link is lost)
 * @property {boolean} [resumable]  default true: a dropped signaling socket is resumed, the
 *   peer keeps its id and role; false rejoins as a new peer instead
 */

/**
 * What each of a session's events carries (`event.detail`), by name: listeners added with
 * `on` are typed by it, and a name not here is an error for TypeScript.
 * @typedef {object} StarSessionEventMap
 * @property {CustomEvent<{peerId: string}>} negotiating
 * @property {CustomEvent<{peerId: string}>} connecting
 * @property {CustomEvent<{peerId: string}>} connected
 * @property {CustomEvent<{peerId: string}>} disconnected
 * @property {CustomEvent<{senderId: string, data: unknown}>} message
 * @property {CustomEvent<{states: Record<string, string>}>} peers
 * @property {CustomEvent<{hostId: string}>} host
 * @property {CustomEvent<{peerId: string, stream: MediaStream}>} stream
 * @property {CustomEvent<{message: string}>} error
 * @property {CustomEvent<{data: unknown}>} server_message
 * @property {CustomEvent<{reason: 'removed' | 'closed' | 'expired'}>} removed
 * @property {CustomEvent<undefined>} closed
 * @property {CustomEvent<undefined>} resuming
 * @property {CustomEvent<undefined>} resumed
 */

const JOIN_TIMEOUT_MS = 10000;
/** A client's messages kept while it has no link to the host; the oldest go first. */
const MAX_QUEUED = 100;

/** A join the server refused (`room is full`, `wrong topology`, `not allowed`...). */
export class JoinRefused extends Error {
  name = 'JoinRefused';
}

export class StarSession extends EventTarget {
  /** @type {SignalingChannel | null} */
  #channel = null;
  /** @type {Map<string, PeerLink>} */
  #links = new Map();
  /** @type {Map<string, PeerEntry>} the members the server shows this peer */
  #members = new Map();
  /** @type {string | null} */
  #peerId = null;
  /** @type {string | null} */
  #hostId = null;
  /** @type {Status} */
  #ownStatus;
  /** @type {Identity} this peer's, from its joined_room */
  #ownIdentity = {};
  /** @type {RTCIceServer[]} */
  #iceServers = [];
  /** @type {unknown[]} */
  #queued = [];
  #lastStates = '';
  #started = false;
  #closed = false;
  #parked = false;
  /** Delays before joining again after losing the server */
  #backoff = new Backoff();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer = undefined;
  /** @type {{resolve: () => void, reject: (error: Error) => void} | null} */
  #joining = null;

  /**
   * Listen to one of the session's events, typed by its name (`StarSessionEventMap`: a
   * name not there is an error for TypeScript); returns what stops listening.
   * `addEventListener` works as well, untyped.
   * @template {keyof StarSessionEventMap} K
   * @param {K} type
   * @param {(event: StarSessionEventMap[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    return listen(this, type, listener);
  }

  /** @param {StarSessionOptions} options */
  constructor(options) {
    super();
    if (!options || typeof options.room !== 'string' || options.room === '') {
      throw new TypeError('StarSession needs a room');
    }
    /**
     * What the session was made with (a copy; `stream` follows `setStream`).
     * @type {StarSessionOptions}
     */
    this.options = { ...options };
    this.#ownStatus = { ...(options.status ?? {}) };
  }

  /** This peer's id, given by the server when it joins (it changes on a rejoin). */
  get peerId() {
    return this.#peerId;
  }

  /** The host's peer id. */
  get hostId() {
    return this.#hostId;
  }

  get isHost() {
    return this.#peerId !== null && this.#peerId === this.#hostId;
  }

  /**
   * A member's status as the server shows it to this peer (a client knows only the host's).
   * @param {string} peerId
   * @returns {Status | undefined}
   */
  statusOf(peerId) {
    return peerId === this.#peerId ? this.#ownStatus : this.#members.get(peerId)?.status;
  }

  /**
   * Who the app says a member is (this peer included), as the server shows it to this peer:
   * `{user, info}` from its join token, each undefined where the token had none (and both
   * in rooms without tokens); undefined for a peer that is not a member this peer knows of.
   * @param {string} peerId
   * @returns {Identity | undefined}
   */
  identityOf(peerId) {
    if (peerId === this.#peerId) {
      return { ...this.#ownIdentity };
    }
    const member = this.#members.get(peerId);
    return member === undefined ? undefined : identityIn(member);
  }

  /**
   * Connect and join the room as a star room. Resolves once joined; rejects with
   * `JoinRefused` when the server refuses the join, or an Error when it cannot be reached.
   */
  async start() {
    if (this.#started) {
      throw new Error('this StarSession has already started');
    }
    this.#started = true;
    await this.#connect();
  }

  /**
   * Send `data` (anything JSON can carry) to the others: a client's goes to the host, which
   * delivers it and relays it to every other client; the host's goes to every client.
   * Nobody gets its own back. A client holds what it sends while it has no link to the host.
   * @param {unknown} data
   */
  send(data) {
    if (this.#closed || this.#peerId === null) {
      return;
    }
    const message = { type: 'Data', senderId: this.#peerId, data };
    if (this.isHost) {
      this.#toClients(message);
      return;
    }
    const link = this.#hostId === null ? undefined : this.#links.get(this.#hostId);
    if (link === undefined || link.state !== 'connected' || !link.send(message)) {
      this.#queued.push(data);
      if (this.#queued.length > MAX_QUEUED) {
        this.#queued.shift();
      }
    }
  }

  /**
   * Send `stream` from now on instead of the one given before (a screen for a camera, say).
   * @param {MediaStream | null} stream
   */
  setStream(stream) {
    this.options.stream = stream;
    for (const link of this.#links.values()) {
      link.setStream(stream);
    }
  }

  /** Leave the room and close every link. */
  close() {
    if (this.#closed) {
      return;
    }
    this.#channel?.send('leave_room');  // first, so that the server hands over at once
    this.#end();
  }

  /** Close the socket and every link, for good. */
  #end() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const channel = this.#channel;
    this.#channel = null;
    channel?.close();
    for (const link of [...this.#links.values()]) {
      link.close();
    }
    this.#links.clear();
    emit(this, 'closed');
  }

  // --- signaling ---------------------------------------------------------------------

  async #connect() {
    const url = this.options.url || gatewayUrl();
    const channel = new SignalingChannel(url, this.options.resumable ?? true);
    this.#channel = channel;
    for (const type of ['resuming', 'resumed']) {
      channel.addEventListener(type, () => emit(this, type));
    }
    channel.addEventListener('removed', (event) => {
      if (channel === this.#channel) {
        this.#onRemoved(/** @type {CustomEvent<{reason: string}>} */ (event).detail.reason);
      }
    });
    /** @type {Promise<void>} */
    const joined = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `the server did not answer the join within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      this.#joining = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
    });
    joined.catch(() => {});  // awaited below, unless opening the socket fails first
    channel.addEventListener('frame', (event) => {
      if (channel === this.#channel) {
        this.#onFrame(/** @type {CustomEvent<Frame>} */ (event).detail);
      }
    });
    channel.addEventListener('close', () => {
      if (channel !== this.#channel) {
        return;
      }
      if (this.#joining !== null) {
        this.#joining.reject(new Error('lost the connection to the server while joining'));
      } else {
        this.#onSignalingLost();
      }
    });
    try {
      await channel.open();
      /** @type {Record<string, unknown>} */
      const join = { room_id: this.options.room, status: this.#ownStatus, topology: 'star' };
      if (this.options.token) {
        join.token = this.options.token;
      }
      channel.send('join_room', join);
      await joined;
    } catch (error) {
      if (this.#channel === channel) {
        this.#channel = null;
        channel.close();
      }
      throw error;
    } finally {
      this.#joining = null;
    }
  }

  /** The socket closed by itself: the server has removed this peer from the room. */
  #onSignalingLost() {
    this.#channel = null;
    if (this.#closed || this.#parked) {
      return;
    }
    this.#retryTimer = setTimeout(() => this.#rejoin(), this.#backoff.next());
  }

  /**
   * The app removed this peer (docs/protocol.md, "Removal"): the server closes the socket
   * (4003) and voids the resume token. Joining again would undo what the app decided, so
   * the session ends here, its links too (the host keeps none to a removed client).
   * @param {string} reason
   */
  #onRemoved(reason) {
    const channel = this.#channel;
    this.#channel = null;  // a `close()` from a listener sends no leave_room: nothing to leave
    channel?.close();
    emit(this, 'removed', { reason });
    this.#end();
  }

  /** Join again, as a new peer (a socket that closed took the old one out of the room). */
  async #rejoin() {
    this.#parked = false;
    if (this.#closed) {
      return;
    }
    try {
      await this.#connect();
    } catch (error) {
      if (error instanceof JoinRefused) {
        emit(this, 'error', { message: error.message });
        this.close();
      } else {
        this.#onSignalingLost();
      }
    }
  }

  /** @param {Frame} frame */
  #onFrame(frame) {
    switch (frame.event) {
      case 'joined_room':
        this.#onJoined(frame);
        break;
      case 'new_peer':
        this.#members.set(frame.peer_id, memberIn(frame));
        if (this.isHost) {
          this.#offerTo(frame.peer_id);
        }
        break;
      case 'peer_left':
        this.#onPeerLeft(frame.sender_id);
        break;
      case 'host_changed':
        this.#onHostChanged(frame.host_id, frame.peers);
        break;
      case 'peer_updated_status':
        if (frame.sender_id === this.#peerId) {
          this.#ownStatus = frame.status;
        } else {
          const member = this.#members.get(frame.sender_id);
          if (member !== undefined) {
            this.#members.set(frame.sender_id, { ...member, status: frame.status });
          }
        }
        break;
      case 'server_message':
        emit(this, 'server_message', { data: frame.data });
        break;
      case 'offer': case 'answer': case 'ice_candidate': case 'message':
        this.#onSignal(frame);
        break;
      case 'error':
        this.#onError(frame);
        break;
      default:
        // pong, info, shutdown (the socket closes after it, and the session rejoins or
        // resumes), removed (the socket tells of it: `#onRemoved`)
        break;
    }
  }

  /** @param {Frame} frame */
  #onJoined(frame) {
    // A (re)join: a new peer id, so every link of before is obsolete.
    for (const link of [...this.#links.values()]) {
      link.close();
    }
    this.#links.clear();
    this.#peerId = frame.own_id;
    this.#ownIdentity = identityIn(frame);
    this.#backoff.reset();
    const ice = /** @type {import('./ice-servers.js').IceFields} */ (frame);
    this.#iceServers = iceServersFor(ice, this.options.iceServers ?? []);
    this.#joining?.resolve();
    this.#onHostChanged(frame.host_id, frame.peers);
  }

  /**
   * @param {string} hostId
   * @param {PeerEntry[]} peers  this peer's view of the room from now on
   */
  #onHostChanged(hostId, peers) {
    this.#hostId = hostId;
    this.#members = new Map(peers.map((peer) => [peer.peer_id, memberIn(peer)]));
    for (const [peerId, link] of [...this.#links]) {
      if (!this.#members.has(peerId)) {
        link.close();
      }
    }
    emit(this, 'host', { hostId });
    if (this.isHost) {
      for (const peerId of this.#members.keys()) {
        this.#offerTo(peerId);
      }
      this.#publishStates();
    }
  }

  /** @param {string} peerId */
  #onPeerLeft(peerId) {
    this.#members.delete(peerId);
    const link = this.#links.get(peerId);
    // On the host, a client that closed its socket on purpose (keepSignaling: false) keeps
    // its link; a link that is gone ends by itself, as it cannot be negotiated again. Only
    // an offer still waiting for its answer is dropped here: no answer will come.
    if (link !== undefined && (!this.isHost || link.state === 'negotiating')) {
      link.close();
    }
    this.#publishStates();
  }

  /** @param {Frame} frame  an offer, answer, candidate or request from another peer */
  #onSignal(frame) {
    const sender = frame.sender_id;
    let link = this.#links.get(sender);
    if (link === undefined && !this.isHost && sender === this.#hostId
        && frame.event === 'offer') {
      link = this.#newLink(sender, false);
    }
    if (link !== undefined && (this.isHost || sender === this.#hostId)) {
      link.handleSignal(frame);
    }
  }

  /** @param {Frame} frame */
  #onError(frame) {
    const message = String(frame.message ?? frame.description);
    if (this.#joining !== null && frame.received_msg === 'join_room') {
      this.#joining.reject(new JoinRefused(message));
    } else if (frame.received_msg !== 'send_to_peer') {
      // A refused send_to_peer is a signal that crossed a leaving peer: nothing to say.
      emit(this, 'error', { message });
    }
  }

  // --- links ----------------------------------------------------------------------

  /** @param {string} peerId */
  #offerTo(peerId) {
    if (!this.#links.has(peerId)) {
      this.#newLink(peerId, true).start();
    }
  }

  /**
   * @param {string} peerId
   * @param {boolean} offerer
   */
  #newLink(peerId, offerer) {
    const link = new PeerLink({
      peerId,
      offerer,
      iceServers: this.#iceServers,
      stream: this.options.stream ?? null,
      heartbeat: this.options.heartbeat ?? null,
      signal: (data) => this.#channel !== null && this.#channel.sendToPeer(peerId, data),
      reachable: () => this.#channel !== null && this.#channel.isOpen
        && this.#members.has(peerId),
    });
    this.#links.set(peerId, link);
    for (const type of ['negotiating', 'connecting', 'disconnected']) {
      link.addEventListener(type, () => emit(this, type, { peerId }));
    }
    link.addEventListener('connected', () => this.#onConnected(link));
    link.addEventListener('closed', () => this.#onLinkClosed(link));
    link.addEventListener('state', () => this.#publishStates());
    link.addEventListener('stream', (event) => emit(this, 'stream', {
      peerId, stream: /** @type {CustomEvent<{stream: MediaStream}>} */ (event).detail.stream,
    }));
    link.addEventListener('message', (event) => this.#onLinkMessage(
      peerId, /** @type {CustomEvent<{data: Record<string, unknown>}>} */ (event).detail.data));
    link.addEventListener('error', (event) => emit(this, 'error', {
      message: /** @type {CustomEvent<{message: string}>} */ (event).detail.message,
    }));
    return link;
  }

  /** @param {PeerLink} link */
  #onConnected(link) {
    emit(this, 'connected', { peerId: link.peerId });
    if (this.isHost) {
      this.#publishStates(true);
      return;
    }
    const queued = this.#queued;
    this.#queued = [];
    for (const data of queued) {
      this.send(data);
    }
  }

  /** A client parks its socket once the host has been heard over the link. */
  #park() {
    if (this.options.keepSignaling === false && this.#channel !== null && !this.isHost) {
      // The gem's memory saving: the host is reached without the server from now on.
      // Only after the host was heard, so that its end of the link is open too: the
      // server tells it this peer left, and it keeps an open link.
      // It leaves the room on the server for good (no resume): the host hears of that
      // at once, and its link stays.
      this.#parked = true;
      this.#channel.send('leave_room');
      this.#channel.close();
      this.#channel = null;
    }
  }

  /** @param {PeerLink} link */
  #onLinkClosed(link) {
    if (this.#links.get(link.peerId) === link) {
      this.#links.delete(link.peerId);
    }
    this.#publishStates();
    if (this.#parked && !this.isHost && !this.#closed) {
      this.#rejoin();  // lost the host without a socket to hear of a new one: join again
    }
  }

  /**
   * @param {string} from
   * @param {Record<string, unknown>} message
   */
  #onLinkMessage(from, message) {
    if (this.isHost) {
      if (message.type === 'Data') {
        emit(this, 'message', { senderId: from, data: message.data });
        this.#toClients({ type: 'Data', senderId: from, data: message.data }, from);
      }
    } else if (from === this.#hostId) {
      this.#park();
      if (message.type === 'Data') {
        emit(this, 'message', { senderId: String(message.senderId ?? from), data: message.data });
      } else if (message.type === 'Data.Connection.State') {
        emit(this, 'peers', { states: message.data });
      }
    }
  }

  /**
   * @param {unknown} message
   * @param {string} [except]  the author, who does not get its own message back
   */
  #toClients(message, except) {
    for (const [peerId, link] of this.#links) {
      if (peerId !== except && link.state === 'connected') {
        link.send(message);
      }
    }
  }

  /** The host tells itself and every client how each link stands, when that changed. */
  #publishStates(force = false) {
    if (!this.isHost || this.#peerId === null) {
      return;
    }
    /** @type {Record<string, string>} */
    const states = { [this.#peerId]: 'connected' };
    for (const [peerId, link] of this.#links) {
      states[peerId] = link.connectionState;
    }
    const text = JSON.stringify(states);
    if (text === this.#lastStates && !force) {
      return;
    }
    this.#lastStates = text;
    emit(this, 'peers', { states });
    this.#toClients({ type: 'Data.Connection.State', data: states });
  }
}

/**
 * A member as the server showed it: its id, status and, when its token had them, `user`
 * and `info` (anything else the frame carried is left out).
 * @param {Record<string, any>} entry  a `peers` entry, or a new_peer frame
 * @returns {PeerEntry}
 */
const memberIn = (entry) => ({
  peer_id: entry.peer_id, status: entry.status ?? {}, ...identityIn(entry),
});

/**
 * The identity fields of a frame (a member's entry, or a joined_room for this peer's own),
 * each only when it has the type the protocol gives it.
 * @param {Record<string, unknown>} fields
 * @returns {Identity}
 */
const identityIn = ({ user, info }) => ({
  ...(typeof user === 'string' ? { user } : {}),
  ...(isObject(info) ? { info } : {}),
});
