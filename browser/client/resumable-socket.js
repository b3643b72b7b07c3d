/**
 * A WebSocket that survives the network (docs/protocol.md, "Resume").
 *
 * It speaks like a browser WebSocket (`readyState`, `send`, `close`, `onopen`,
 * `onmessage`, `onerror`, `onclose`), so that code written for one, palava-client's
 * included, can use it unchanged. It asks for a resumable join (`"resumable": true` in
 * every `join_room`), keeps the resume token and the last `frame_seq` it got, and when
 * the socket drops it opens another (any gateway will do) and resumes: the service sends
 * every frame it lacked, in order, then live traffic. Meanwhile it stays OPEN and keeps
 * what is sent for after the resume; the resumed `joined_room` is not passed on, since
 * nothing changed for the code above. Only when a resume cannot be had (the service says
 * `cannot resume`, or none answers within `resumeWithinMs`) does the code above see the
 * socket close, and then it joins again as it would have. (After an attempt whose socket
 * closed before its answer, `cannot resume` may only mean that the service has not yet seen
 * that socket go: it tries again within `resumeWithinMs`.) A peer the app removed
 * (docs/protocol.md, "Removal": a `removed` frame, then close code 4003) is never resumed:
 * its resume token is void.
 *
 * Events besides the WebSocket ones (CustomEvent, data in `detail`): `frame`, whose detail
 * is a JSON object the code above gets, parsed (right after its `message`: a listener need
 * not parse it again); `joined`, whose detail is every joined_room but a resumed one (before
 * the code above gets it); `resuming` {code} (the socket dropped); `resumed`; `removed`
 * {reason} (once: after the `removed` frame was passed on, or before the `close` of a 4003
 * that came without one; `reason` is 'removed', 'closed' or 'expired').
 * @module
 */

import { emit, listen } from './events.js';
import { parseObject } from './json.js';

/** The browser's own, taken now: a page may stand this class in for `WebSocket` later. */
const NativeWebSocket = globalThis.WebSocket;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;
/** Another socket took the peer over: nothing to resume. */
const TAKEN_OVER = 4001;
/** The app removed the peer, or its room ended: nothing to resume. */
const REMOVED = 4003;
const REMOVAL_REASONS = ['removed', 'closed', 'expired'];
/** Delays before each new socket of a resume (ms); the last one repeats. */
const RETRY_DELAYS_MS = [0, 250, 500, 1000, 2000];
/** Frames sent while resuming, kept for after it; beyond, the oldest go. */
const MAX_HELD = 1000;

/**
 * @typedef {object} ResumableOptions
 * @property {number} [resumeWithinMs]  how long to try (the service's grace period,
 *   SWITCHBOARD_RESUME_GRACE_S, 15 s by default)
 * @property {boolean} [resumable]  false: a plain WebSocket, that asks for no resume
 * @property {Record<string, unknown>} [join]  fields added to every join_room (a join
 *   `token`, say)
 */

/**
 * The socket's events beside the WebSocket ones, by name (see above): what `on` types.
 * @typedef {object} ResumableSocketEventMap
 * @property {Event} open
 * @property {MessageEvent} message
 * @property {Event} error
 * @property {CloseEvent} close
 * @property {CustomEvent<Record<string, unknown>>} frame
 * @property {CustomEvent<Record<string, unknown>>} joined
 * @property {CustomEvent<{code: number}>} resuming
 * @property {CustomEvent<undefined>} resumed
 * @property {CustomEvent<{reason: 'removed' | 'closed' | 'expired'}>} removed
 */

export class ResumableSocket extends EventTarget {
  /** @type {((event: Event) => void) | null} */
  onopen = null;
  /** @type {((event: MessageEvent) => void) | null} */
  onmessage = null;
  /** @type {((event: Event) => void) | null} */
  onerror = null;
  /** @type {((event: CloseEvent) => void) | null} */
  onclose = null;
  /** @type {WebSocket} */
  #socket;
  #readyState = CONNECTING;
  /** @type {string | null} */
  #token = null;
  #lastSeq = 0;
  #resuming = false;
  #closedByUs = false;
  #removed = false;
  /** @type {string[]} */
  #held = [];
  #deadline = 0;  // of the resume under way
  #attempt = 0;
  #closeCode = 1006;  // of the socket that dropped, told if the resume fails
  #asked = false;  // a resume is sent on this socket, and not answered yet
  #answerLost = false;  // a socket closed with its resume unanswered, in this resume

  /**
   * @param {string} url
   * @param {ResumableOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.resumeWithinMs = options.resumeWithinMs ?? 15000;
    this.resumable = options.resumable ?? true;
    this.join = options.join ?? {};
    this.#socket = this.#open();
  }

  /**
   * Listen to one of the socket's events, typed by its name (`ResumableSocketEventMap`: a
   * name not there is an error for TypeScript); returns what stops listening.
   * @template {keyof ResumableSocketEventMap} K
   * @param {K} type
   * @param {(event: ResumableSocketEventMap[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    return listen(this, type, listener);
  }

  get readyState() {
    return this.#readyState;
  }

  /** Whether a resume is under way (the socket is OPEN to the code above meanwhile). */
  get resuming() {
    return this.#resuming;
  }

  /** @param {string} text  one client frame, as JSON */
  send(text) {
    const frame = parseObject(text);
    if (frame !== null && frame.event === 'join_room') {
      const resumable = this.resumable && frame.resumable === undefined ? { resumable: true } : {};
      text = JSON.stringify({ ...this.join, ...frame, ...resumable });
    } else if (frame !== null && frame.event === 'leave_room') {
      this.#token = null;  // left on purpose: nothing to resume from here
    }
    if (this.#resuming) {
      this.#held.push(text);
      if (this.#held.length > MAX_HELD) {
        this.#held.shift();
      }
      return;
    }
    this.#socket.send(text);
  }

  /**
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    this.#closedByUs = true;
    this.#token = null;
    if (this.#resuming) {
      this.#socket.close(code, reason);
      this.#finish(code, reason);
      return;
    }
    this.#socket.close(code, reason);
  }

  /** A socket wired to this object. */
  #open() {
    const socket = new NativeWebSocket(this.url);
    socket.onopen = (event) => {
      if (socket !== this.#socket) {
        return;
      }
      if (this.#resuming) {
        socket.send(JSON.stringify({ event: 'resume', resume_token: this.#token,
                                     last_frame_seq: this.#lastSeq }));
        this.#asked = true;
        return;
      }
      this.#readyState = OPEN;
      this.onopen?.(event);
      this.dispatchEvent(new Event('open'));
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket) {
        this.#receive(event);
      }
    };
    socket.onerror = (event) => {
      if (socket === this.#socket && !this.#resuming) {
        this.onerror?.(event);
      }
    };
    socket.onclose = (event) => {
      if (socket === this.#socket) {
        this.#lost(event.code, event.reason);
      }
    };
    return socket;
  }

  /** @param {MessageEvent} event */
  #receive(event) {
    const frame = parseObject(event.data);
    if (frame !== null) {
      if (frame.event === 'joined_room') {
        this.#token = typeof frame.resume_token === 'string' ? frame.resume_token : null;
        if (frame.resumed === true && this.#resuming) {
          this.#resumed();
          return;  // nothing changed for the code above
        }
        this.#lastSeq = 0;
        emit(this, 'joined', frame);
      } else if (frame.event === 'error' && frame.received_msg === 'resume' && this.#resuming) {
        this.#asked = false;
        if (this.#answerLost && Date.now() < this.#deadline) {
          // An earlier attempt may have been taken, its answer lost with its gateway: the
          // token it spent is taken once more when the service has seen that socket go
          // (docs/protocol.md, "Resume"), so try again (the close below does) until then.
          this.#socket.close();
        } else {
          this.#giveUp();
        }
        return;
      }
      if (typeof frame.frame_seq === 'number') {
        if (frame.frame_seq <= this.#lastSeq) {
          return;  // had it already (the service sends none twice; this is a bound)
        }
        this.#lastSeq = frame.frame_seq;
      }
    }
    if (!this.#resuming) {
      this.onmessage?.(event);
      this.dispatchEvent(new MessageEvent('message', { data: event.data }));
      if (frame !== null) {
        emit(this, 'frame', frame);
      }
    }
    if (frame !== null && frame.event === 'removed') {
      this.#removal(frame.reason);
    }
  }

  /**
   * The app ended the peer's membership: its resume token is void, so the close that
   * follows is passed on, not resumed.
   * @param {unknown} reason  the `removed` frame's, or the close's
   */
  #removal(reason) {
    this.#token = null;
    if (!this.#removed) {
      this.#removed = true;
      const known = REMOVAL_REASONS.find((name) => name === reason);
      emit(this, 'removed', { reason: known ?? 'removed' });
    }
  }

  /**
   * The socket closed: resume, or tell the code above.
   * @param {number} code
   * @param {string} reason
   */
  #lost(code, reason) {
    if (this.#asked) {
      this.#asked = false;
      this.#answerLost = true;
    }
    if (code === REMOVED) {
      this.#removal(reason);
    }
    const mayResume = this.#token !== null && !this.#closedByUs && code !== TAKEN_OVER
      && this.#readyState === OPEN;
    if (!mayResume) {
      this.#finish(code, reason);
      return;
    }
    if (!this.#resuming) {
      this.#resuming = true;
      this.#deadline = Date.now() + this.resumeWithinMs;
      this.#attempt = 0;
      this.#answerLost = false;
      this.#closeCode = code;
      emit(this, 'resuming', { code });
    }
    if (Date.now() > this.#deadline) {
      this.#giveUp();
      return;
    }
    const delay = RETRY_DELAYS_MS[Math.min(this.#attempt, RETRY_DELAYS_MS.length - 1)];
    this.#attempt += 1;
    setTimeout(() => {
      if (this.#resuming && !this.#closedByUs) {
        this.#socket = this.#open();
      }
    }, delay);
  }

  #resumed() {
    this.#resuming = false;
    this.#asked = false;
    const held = this.#held;
    this.#held = [];
    for (const text of held) {
      this.#socket.send(text);
    }
    emit(this, 'resumed');
  }

  #giveUp() {
    this.#resuming = false;
    this.#token = null;
    this.#held = [];
    const socket = this.#socket;
    this.#finish(this.#closeCode, 'cannot resume');
    socket.close();
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  #finish(code, reason) {
    if (this.#readyState === CLOSED) {
      return;
    }
    this.#readyState = CLOSED;
    this.#resuming = false;
    const event = new CloseEvent('close', { code, reason });
    this.onclose?.(event);
    this.dispatchEvent(new CloseEvent('close', { code, reason }));
  }
}
