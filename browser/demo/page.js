/**
 * What both demo pages draw the same way: notices and chat lines. Each page keeps what it
 * shows on its state object (`window.demo`, `window.broadcast`) for tests and the curious;
 * these functions add to those lists and to the page.
 * @module
 */

export const MAX_CHAT_TEXT = 500;
const MAX_NOTICES = 6;

/** @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Milliseconds since the epoch, with the precision of performance.now(). */
export const now = () => performance.timeOrigin + performance.now();

/**
 * @typedef {object} Notice
 * @property {string} kind  a class of the #notices list ('error', 'connection'...)
 * @property {string} text
 * @property {number} at
 */

/**
 * @typedef {object} ChatLine
 * @property {string | null} fromId
 * @property {string} name
 * @property {string} text
 * @property {boolean} own
 * @property {number} at
 */

/**
 * Show a notice in #notices (the latest few) and keep it in `notices`.
 * @param {Notice[]} notices
 * @param {string} kind
 * @param {string} text
 */
export function addNotice(notices, kind, text) {
  notices.push({ kind, text, at: now() });
  const list = $('notices');
  const item = document.createElement('li');
  item.className = kind;
  item.textContent = text;
  list.appendChild(item);
  while (list.children.length > MAX_NOTICES) {
    list.firstElementChild?.remove();
  }
}

/**
 * Show a line in #chat-log and keep it in `chat`.
 * @param {ChatLine[]} chat
 * @param {ChatLine} line
 */
export function addChatLine(chat, line) {
  chat.push(line);
  const item = document.createElement('li');
  item.className = line.own ? 'own' : 'theirs';
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = line.name + ':';
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = line.text;
  item.append(from, text);
  const log = $('chat-log');
  log.appendChild(item);
  log.scrollTop = log.scrollHeight;
}

/**
 * Play `stream` in `video`; where the browser refuses sound without a click, muted.
 * @param {HTMLVideoElement} video
 * @param {MediaStream | null} stream
 */
export function play(video, stream) {
  if (video.srcObject !== stream) {
    video.srcObject = stream;
  }
  if (stream) {
    video.play().catch(() => {
      video.muted = true;
      video.title = 'Click to unmute';
      return video.play();
    }).catch(() => {});
  }
}

/**
 * @typedef {object} Controls  what a page does when its controls are used
 * @property {(roomId: string, name: string) => void} join  the join form, when not in a room
 * @property {() => void} leave  the leave button
 * @property {(text: string) => void} chat  the chat form, with the trimmed text
 * @property {() => boolean} inRoom  whether the page is in (or joining) a room
 */

/**
 * Wire the join form, the leave button and the chat form, filling the form from the
 * address (`?room=..&name=..`).
 * @param {Controls} controls
 */
export function wireControls(controls) {
  const params = new URLSearchParams(location.search);
  const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));
  input('room').value = params.get('room') || '';
  input('name').value = params.get('name') || '';
  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const roomId = input('room').value.trim();
    const name = input('name').value.trim();
    if (roomId && name && !controls.inRoom()) {
      controls.join(roomId, name);
    }
  });
  $('leave').addEventListener('click', () => controls.leave());
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input('chat-input').value.trim().slice(0, MAX_CHAT_TEXT);
    if (text) {
      controls.chat(text);
      input('chat-input').value = '';
    }
  });
}

/** Join at once when the address named a room and a name. */
export function joinIfNamed() {
  const form = /** @type {HTMLFormElement} */ ($('join-form'));
  const filled = ['room', 'name'].every(
    (id) => /** @type {HTMLInputElement} */ ($(id)).value.trim() !== '');
  if (filled) {
    form.requestSubmit();
  }
}

/**
 * Put the room in the address bar, so that it holds a link to share.
 * @param {string} roomId
 */
export function rememberRoomInAddress(roomId) {
  const params = new URLSearchParams(location.search);
  params.set('room', roomId);
  history.replaceState(null, '', `${location.pathname}?${params}`);
}
