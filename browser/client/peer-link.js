/**
 * One WebRTC link to one remote peer: an RTCPeerConnection with one DataChannel, the
 * offer/answer exchange through the signaling server, and its recovery.
 *
 * One side offers (in a star session, the host), so offers never cross; the other answers.
 * As in MDN's "Perfect negotiation" pattern, ICE candidates wait until the remote
 * description is set, and a failed link is restarted: first an ICE restart, then a new
 * connection, at most `MAX_ATTEMPTS` times in a row. Every signal names the connection it
 * belongs to (`link`), so that a late candidate of a replaced connection is dropped.
 *
 * Events (CustomEvent, data in `detail`): `negotiating`, `connecting`, `connected`,
 * `disconnected` (a connected link was lost; it may come back), `closed` (for good),
 * `message` {data}, `stream` {stream}, `state` (the connection's state changed),
 * `error` {message}.
 * @module
 */

import { emit } from './events.js';
import { parseObject } from './json.js';

/** Recoveries of a link in a row (since it was last connected) before it is given up. */
const MAX_ATTEMPTS = 3;
/** How long one attempt may take to connect. */
const CONNECT_TIMEOUT_MS = 15000;
/** How long a connection may stay `disconnected` (it often comes back) before recovery. */
const DISCONNECTED_GRACE_MS = 4000;
/** Unsent DataChannel bytes beyond which `send` refuses (a slow or stuck peer). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** STUN error codes of a TURN server refusing credentials: 401 Unauthorized, 403 Forbidden. */
const TURN_REFUSALS = [401, 403];
/** Both sides create the channel with the same id: no `datachannel` event to wait for. */
const CHANNEL_OPTIONS = { negotiated: true, id: 0 };

/**
 * @typedef {object} Heartbeat  DataChannel heartbeats (the p2p_streams_channel gem's)
 * @property {number} intervalMs  how often each side sends one
 * @property {number} idleTimeoutMs  silence after which the link counts as lost
 */

/** @typedef {{event: string} & Record<string, unknown>} Signal  data for send_to_peer */

/**
 * @typedef {object} LinkOptions
 * @property {string} peerId  the remote peer
 * @property {boolean} offerer  whether this side makes the offers
 * @property {RTCIceServer[]} iceServers
 * @property {MediaStream | null} stream  what this side sends
 * @property {Heartbeat | null} heartbeat
 * @property {(data: Signal) => boolean} signal  sends data to the remote peer (send_to_peer)
 * @property {() => boolean} reachable  whether signals can reach the remote peer now
 */

/**
 * @typedef {'new' | 'negotiating' | 'connecting' | 'connected' | 'disconnected' | 'closed'}
 *   LinkState
 */

const newLinkId = () => Math.random().toString(36).slice(2, 10);

/**
 * Add a remote candidate; one that does not fit (of a restarted ICE session, say) is
 * dropped, as browsers expect some to be.
 * @param {RTCPeerConnection} pc
 * @param {RTCIceCandidateInit} candidate
 */
const addCandidate = async (pc, candidate) => {
  try {
    await pc.addIceCandidate(candidate);
  } catch {
    // dropped: the connection goes on with the candidates that fit
  }
};

export class PeerLink extends EventTarget {
  /** @type {RTCPeerConnection | null} */
  #pc = null;
  /** @type {RTCDataChannel | null} */
  #channel = null;
  #linkId = '';
  /** @type {RTCIceCandidateInit[]} */
  #pendingCandidates = [];
  /** @type {Promise<void>} */
  #queue = Promise.resolve();
  /** @type {LinkState} */
  #state = 'new';
  #attempts = 0;
  #wantOffer = false;
  #tracksAdded = false;
  /** @type {MediaStream | null} */
  #remoteStream = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #deadline = undefined;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #beat = undefined;
  #lastHeard = 0;

  /** @param {LinkOptions} options */
  constructor(options) {
    super();
    this.options = options;
    this.peerId = options.peerId;
    this.stream = options.stream;
  }

  /** @returns {LinkState} */
  get state() {
    return this.#state;
  }

  /** The RTCPeerConnection's `connectionState`, as a host shows it to its clients. */
  get connectionState() {
    if (this.#state === 'closed') {
      return 'closed';
    }
    return this.#pc === null ? 'new' : this.#pc.connectionState;
  }

  /** The offering side starts negotiating. */
  start() {
    this.#fresh(newLinkId());
    this.#offer(false);
  }

  /**
   * A signal from the remote peer (its send_to_peer data), in the order it was sent.
   * @param {Record<string, unknown>} data
   */
  handleSignal(data) {
    this.#enqueue(() => this.#onSignal(data));
  }

  /**
   * Send one message over the DataChannel, as JSON.
   * @param {unknown} message
   * @returns {boolean} false when the channel is not open or too far behind
   */
  send(message) {
    const channel = this.#channel;
    if (channel === null || channel.readyState !== 'open'
        || channel.bufferedAmount > MAX_BUFFERED_BYTES) {
      return false;
    }
    channel.send(JSON.stringify(message));
    return true;
  }

  /**
   * Send `stream` instead of what was sent so far (a camera, a screen, or null).
   * @param {MediaStream | null} stream
   */
  setStream(stream) {
    this.stream = stream;
    this.#enqueue(async () => {
      const pc = this.#pc;
      if (pc === null) {
        return;
      }
      let renegotiate = false;
      for (const transceiver of pc.getTransceivers()) {
        const kind = transceiver.receiver.track.kind;
        const track = stream === null ? null
          : stream.getTracks().find((t) => t.kind === kind) ?? null;
        await transceiver.sender.replaceTrack(track);
        if (track !== null && stream !== null) {
          if (typeof transceiver.sender.setStreams === 'function') {
            transceiver.sender.setStreams(stream);  // so that the other side sees one stream
          }
          if (transceiver.direction === 'recvonly' || transceiver.direction === 'inactive') {
            transceiver.direction = 'sendrecv';
            renegotiate = true;
          }
        }
      }
      if (renegotiate) {
        // Only the offerer offers: the answerer asks it to.
        if (this.options.offerer) {
          this.#offer(false);
        } else {
          this.#signal('message', { request: 'renegotiate' });
        }
      }
    });
  }

  /** Close the link for good. */
  close() {
    if (this.#state === 'closed') {
      return;
    }
    this.#stopTimers();
    this.#detach();
    this.#setState('closed');
  }

  // --- negotiation -------------------------------------------------------------------

  /**
   * A new RTCPeerConnection (and DataChannel) named `linkId`, replacing any before it.
   * @param {string} linkId
   */
  #fresh(linkId) {
    this.#detach();
    const { iceServers } = this.options;
    const pc = new RTCPeerConnection({ iceServers });
    const channel = pc.createDataChannel('switchboard', CHANNEL_OPTIONS);
    this.#pc = pc;
    this.#channel = channel;
    this.#linkId = linkId;
    this.#pendingCandidates = [];
    this.#tracksAdded = false;
    this.#remoteStream = null;
    this.#wantOffer = false;
    pc.onicecandidate = ({ candidate }) => {
      if (candidate !== null && candidate.candidate !== '' && pc === this.#pc) {
        this.#signal('ice_candidate', {
          candidate: candidate.candidate, sdpmid: candidate.sdpMid,
          sdpmlineindex: candidate.sdpMLineIndex,
        });
      }
    };
    let refusalTold = false;
    pc.onicecandidateerror = (event) => {
      // A TURN server that refuses the credentials (a wrong or expired secret) leaves a
      // relay-only link without a way through: said at once, not after every attempt's
      // timeout. Other candidate errors (an unreachable STUN server...) are routine.
      const { errorCode, url, errorText } = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
      if (pc === this.#pc && !refusalTold && TURN_REFUSALS.includes(errorCode)) {
        refusalTold = true;
        emit(this, 'error', { message: `link to ${this.peerId}: the TURN server ${url} `
          + `refused its credentials (${errorCode} ${errorText})` });
      }
    };
    pc.ontrack = ({ track }) => {
      if (pc === this.#pc) {
        this.#remoteStream ??= new MediaStream();
        this.#remoteStream.addTrack(track);
        emit(this, 'stream', { stream: this.#remoteStream });
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.#pc) {
        this.#onConnectionState(pc.connectionState);
      }
    };
    channel.onopen = () => {
      if (channel === this.#channel) {
        this.#lastHeard = Date.now();
        this.#startHeartbeat();
        if (pc.connectionState === 'connected') {
          this.#setState('connected');
        }
      }
    };
    channel.onclose = () => {
      if (channel === this.#channel) {
        this.#lost('the data channel closed');
      }
    };
    channel.onmessage = ({ data }) => {
      if (channel === this.#channel) {
        this.#received(data);
      }
    };
    if (this.options.offerer) {
      // The offer carries both kinds of media, so that the answerer can send what it
      // has even when this side sends nothing of that kind.
      const stream = this.stream;
      for (const kind of ['audio', 'video']) {
        const track = stream === null ? undefined
          : stream.getTracks().find((t) => t.kind === kind);
        if (track !== undefined && stream !== null) {
          pc.addTrack(track, stream);
        } else {
          pc.addTransceiver(kind, { direction: 'recvonly' });
        }
      }
    }
    this.#armDeadline();
    this.#setState('negotiating');
  }

  /** @param {boolean} iceRestart */
  #offer(iceRestart) {
    this.#enqueue(async () => {
      const pc = this.#pc;
      if (pc === null) {
        return;
      }
      if (pc.signalingState !== 'stable') {
        this.#wantOffer = true;  // made once the answer to the outstanding offer is in
        return;
      }
      this.#wantOffer = false;
      const offer = await pc.createOffer({ iceRestart });
      if (pc !== this.#pc) {
        return;
      }
      await pc.setLocalDescription(offer);
      this.#signal('offer', { sdp: { type: 'offer', sdp: offer.sdp } });
    });
  }

  /** @param {Record<string, unknown>} data */
  async #onSignal(data) {
    if (this.#state === 'closed' || typeof data.link !== 'string') {
      return;
    }
    const { event, link } = data;
    if (event === 'offer' && !this.options.offerer) {
      if (link !== this.#linkId) {
        this.#fresh(link);  // the offerer started a new connection
      }
      await this.#answer(/** @type {RTCSessionDescriptionInit} */ (data.sdp));
      return;
    }
    const pc = this.#pc;
    if (link !== this.#linkId || pc === null) {
      return;  // about a connection replaced since
    }
    if (event === 'answer' && this.options.offerer) {
      if (pc.signalingState === 'have-local-offer') {
        await pc.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (data.sdp));
        await this.#flushCandidates();
        if (this.#wantOffer) {
          this.#offer(false);
        }
      }
    } else if (event === 'ice_candidate') {
      const candidate = {
        candidate: /** @type {string} */ (data.candidate),
        sdpMid: /** @type {string | null} */ (data.sdpmid ?? null),
        sdpMLineIndex: /** @type {number | null} */ (data.sdpmlineindex ?? null),
      };
      if (pc.remoteDescription === null) {
        this.#pendingCandidates.push(candidate);
      } else {
        await addCandidate(pc, candidate);
      }
    } else if (event === 'message' && this.options.offerer) {
      if (data.request === 'restart') {
        this.#lost('the other side lost the connection');
      } else if (data.request === 'renegotiate') {
        this.#offer(false);
      }
    }
  }

  /** @param {RTCSessionDescriptionInit} sdp */
  async #answer(sdp) {
    const pc = this.#pc;
    if (pc === null) {
      return;
    }
    await pc.setRemoteDescription(sdp);
    const stream = this.stream;
    if (!this.#tracksAdded && stream !== null) {
      // addTrack takes the offer's transceiver of the same kind (the offer has both).
      for (const track of stream.getTracks()) {
        pc.addTrack(track, stream);
      }
    }
    this.#tracksAdded = true;
    const answer = await pc.createAnswer();
    if (pc !== this.#pc) {
      return;
    }
    await pc.setLocalDescription(answer);
    this.#signal('answer', { sdp: { type: 'answer', sdp: answer.sdp } });
    await this.#flushCandidates();
  }

  async #flushCandidates() {
    const pc = this.#pc;
    const pending = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const candidate of pending) {
      if (pc !== null) {
        await addCandidate(pc, candidate);
      }
    }
  }

  /**
   * @param {string} event
   * @param {Record<string, unknown>} fields
   */
  #signal(event, fields) {
    this.options.signal({ event, link: this.#linkId, ...fields });
  }

  /** @param {() => Promise<void>} work */
  #enqueue(work) {
    this.#queue = this.#queue.then(work).catch((error) => {
      emit(this, 'error', { message: `link to ${this.peerId}: ${error}` });
      this.#lost(String(error));
    });
  }

  // --- the connection's life -------------------------------------------------------------

  /** @param {RTCPeerConnectionState} state */
  #onConnectionState(state) {
    emit(this, 'state');
    if (state === 'connecting' && this.#state !== 'connected') {
      this.#setState('connecting');
    } else if (state === 'connected') {
      if (this.#channel !== null && this.#channel.readyState === 'open') {
        this.#setState('connected');
      }
    } else if (state === 'disconnected' && this.#state === 'connected') {
      this.#setState('disconnected');
      this.#armDeadline(DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      this.#lost('ICE failed');
    }
  }

  /**
   * The connection is gone or will not come: recover it, or give the link up.
   * @param {string} reason
   */
  #lost(reason) {
    if (this.#state === 'closed') {
      return;
    }
    this.#stopTimers();
    if (!this.options.reachable()) {
      this.close();  // the other side left the signaling server: nobody to negotiate with
      return;
    }
    if (this.#attempts >= MAX_ATTEMPTS) {
      emit(this, 'error', {
        message: `gave up the link to ${this.peerId} after ${MAX_ATTEMPTS} attempts: ${reason}`,
      });
      this.close();
      return;
    }
    this.#attempts += 1;
    if (this.#state === 'connected') {
      this.#setState('disconnected');
    }
    if (!this.options.offerer) {
      this.#signal('message', { request: 'restart' });
      this.#armDeadline();
    } else if (this.#attempts === 1 && this.#channel !== null
               && this.#channel.readyState === 'open') {
      this.#armDeadline();
      this.#offer(true);  // an ICE restart keeps the connection and its channel
    } else {
      this.#fresh(newLinkId());
      this.#offer(false);
    }
  }

  /** @param {LinkState} state */
  #setState(state) {
    const was = this.#state;
    if (state === was) {
      return;
    }
    this.#state = state;
    if (was === 'connected') {
      emit(this, 'disconnected');
    }
    if (state === 'connected') {
      this.#attempts = 0;
      clearTimeout(this.#deadline);
    }
    if (state !== 'disconnected' && state !== 'new') {
      emit(this, state);
    }
    emit(this, 'state');
  }

  /** @param {unknown} text */
  #received(text) {
    this.#lastHeard = Date.now();
    const message = parseObject(text);
    if (message !== null && message.type !== 'Heartbeat') {
      emit(this, 'message', { data: message });
    }
  }

  #startHeartbeat() {
    const heartbeat = this.options.heartbeat;
    clearInterval(this.#beat);
    if (heartbeat === null) {
      return;
    }
    this.#beat = setInterval(() => {
      if (Date.now() - this.#lastHeard > heartbeat.idleTimeoutMs) {
        this.#lost(`no heartbeat for ${heartbeat.idleTimeoutMs} ms`);
      } else {
        this.send({ type: 'Heartbeat' });
      }
    }, heartbeat.intervalMs);
  }

  #armDeadline(ms = CONNECT_TIMEOUT_MS) {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#lost(`not connected within ${ms} ms`), ms);
  }

  #stopTimers() {
    clearTimeout(this.#deadline);
    clearInterval(this.#beat);
  }

  /** Close the current connection without a word to anyone (it is replaced or done). */
  #detach() {
    const pc = this.#pc;
    const channel = this.#channel;
    this.#pc = null;
    this.#channel = null;
    clearInterval(this.#beat);
    if (channel !== null) {
      channel.close();
    }
    if (pc !== null) {
      pc.close();
    }
  }
}
