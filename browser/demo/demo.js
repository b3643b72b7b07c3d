/* Switchboard demo: a mesh video call with the palava-client library (palava.bundle.js).
 *
 * palava-client does the WebRTC work (getUserMedia, one RTCPeerConnection per remote
 * peer, offers, answers and ICE candidates through the server); this page draws what its
 * session reports and adds a chat over `send_to_peer` `message` events. Its signaling
 * socket resumes after a drop (palava-resume.js): the call goes on and the others see
 * nothing. When a resume cannot be had, it joins again as a new peer, with backoff.
 * `?token=` is passed as the join token; `?resume=off` joins without resume.
 *
 * What the page shows is also kept on `window.demo`, for tests and for the curious:
 *   state       'idle' | 'connecting' | 'joined' | 'reconnecting' | 'left'
 *   roomId, name, ownId
 *   peers       {peerId: {name, connected, hasTrack}}    the remote peers
 *   chat        [{fromId, name, text, own, at}]
 *   notices     [{kind, text, at}]   kind: 'shutdown' | 'error' | 'connection' |
 *               'reconnected' | 'media' | 'resuming' | 'resumed'
 *   timings     {joinSentAt, joinedAt, connectedAt: {peerId: t}, videoAt: {peerId: t}} of
 *               the latest join, in epoch milliseconds: join_room sent, joined_room
 *               received, palava's peer_connection_established, first remote video frame
 *   reconnects  how many times the page joined again after losing the server
 *   resumes     how many times its socket dropped and was resumed
 *   peersLeft   how many peer_left it was told of (since the page opened)
 */
import { palavaIceOptions, useResumableSockets } from './palava-resume.js';
import {
  $, MAX_CHAT_TEXT, addChatLine, addNotice, joinIfNamed, now, play, rememberRoomInAddress,
  wireControls,
} from './page.js';

/* global palava */

// palava-client refuses to start without a STUN server. Calls on one machine or LAN need
// none, so this names one that need not exist.
const STUN = 'stun:127.0.0.1:3478';
const JOIN_TIMEOUT_MS = 5000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10000;

const demo = window.demo = {
  state: 'idle',
  roomId: null,
  name: null,
  ownId: null,
  peers: {},
  chat: [],
  notices: [],
  timings: newTimings(),
  reconnects: 0,
  resumes: 0,
  peersLeft: 0,
};

let session = null;
let retryTimer = null;
let retryDelay = RETRY_FIRST_MS;
let lostConnection = false;

function newTimings() {
  return {
    joinCalledAt: null, openAt: null, joinSentAt: null, joinedAt: null, connectedAt: {}, videoAt: {},
  };
}

// --- the server's address: the host this page came from, so any replica works ---

function webSocketAddress() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
}

// --- session life: join, lose the server, join again, leave ---

function join(roomId, name) {
  demo.roomId = roomId;
  demo.name = name;
  demo.ownId = null;
  retryDelay = RETRY_FIRST_MS;
  lostConnection = false;
  session = new palava.Session({
    roomId: roomId,
    webSocketAddress: webSocketAddress(),
    // palava.Identity copies its `name` option into the status it sends (status.name).
    identity: new palava.Identity({ userMediaConfig: { video: true, audio: true }, name: name }),
    stun: STUN,
    joinTimeout: JOIN_TIMEOUT_MS,
  });
  listen(session);
  rememberRoomInAddress(roomId);
  open();
}

function open() {
  clearPeers();
  demo.timings = newTimings();
  setState(lostConnection ? 'reconnecting' : 'connecting');
  // Resolves once palava has handed join_room to its socket (after getUserMedia).
  Promise.resolve(session.connect({})).then(() => {
    if (session && session.getRoom()) {
      demo.timings.joinCalledAt = now();
      noteJoinSent();
    }
  });
}

function noteJoinSent() {
  // join_room leaves when palava has called join *and* the socket is open.
  const t = demo.timings;
  if (t.joinSentAt === null && t.joinCalledAt !== null && t.openAt !== null) {
    t.joinSentAt = Math.max(t.joinCalledAt, t.openAt);
  }
}

function connectionLost(reason) {
  if (retryTimer !== null || demo.state === 'idle' || demo.state === 'left') {
    return;
  }
  lostConnection = true;
  clearPeers();
  setState('reconnecting');
  const delay = retryDelay * (0.8 + 0.4 * Math.random());
  retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
  notice('connection', `${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s.`);
  retryTimer = setTimeout(reconnect, delay);
}

function reconnect() {
  retryTimer = null;
  session.tearDown(false);  // keep the camera: the next join reuses its stream
  open();
}

function stop(state) {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (session) {
    session.removeAllListeners();
    session.destroy();  // sends leave_room, closes the socket and the camera
    session = null;
  }
  clearPeers();
  $('local-video').srcObject = null;
  setState(state);
}

// --- what palava-client reports ---

function listen(s) {
  // Block bodies throughout: palava's EventEmitter drops a listener that returns true.
  const on = (event, handler) => s.on(event, (...args) => { handler(...args); });
  on('signaling_open', () => {
    demo.timings.openAt = now();
    noteJoinSent();
  });
  on('room_joined', joined);
  on('room_join_error', () => connectionLost('The server did not answer the join in time'));
  on('peer_joined', addPeer);
  on('peer_left', (peer) => { demo.peersLeft += 1; removePeer(peer.id); });
  on('peer_update', (peer) => { if (!peer.isLocal()) updatePeer(peer); });
  on('local_stream_ready', showLocalStream);
  on('peer_stream_ready', (peer) => {
    if (peer.isLocal()) showLocalStream(peer.getStream()); else showRemoteStream(peer);
  });
  on('peer_stream_removed', (peer) => { if (!peer.isLocal()) showRemoteStream(peer); });
  on('peer_connection_established', (peer) => setConnected(peer, true));
  on('peer_connection_failed', (peer) => setConnected(peer, false));
  on('peer_connection_disconnected', (peer) => setConnected(peer, false));
  on('peer_connection_closed', (peer) => setConnected(peer, false));
  on('local_stream_error', (error) => notice('media',
    `No camera or microphone (${(error && error.name) || error}): you can watch and chat, but not be seen.`));
  on('signaling_error', serverOrSocketError);
  on('signaling_shutdown', (seconds) => notice('shutdown',
    `The server is restarting in ${seconds} s; this page will reconnect by itself.`));
  on('signaling_close', () => connectionLost('Lost the connection to the server'));
  on('signaling_not_reachable', () => connectionLost('Cannot reach the server'));
  on('argument_error', (text) => refuse(`Cannot start: ${text}.`));
  on('webrtc_no_support', (text) => refuse(`${text}.`));
}

function watchSocket(socket) {
  socket.addEventListener('joined', ({ detail }) => {
    // Before palava-client reads the frame: its peer connections take these servers.
    if (session) {
      Object.assign(session.roomOptions, palavaIceOptions(detail.ice_servers));
    }
  });
  socket.addEventListener('resuming', () => notice('resuming',
    'Lost the connection to the server; resuming (the call goes on)…'));
  socket.addEventListener('resumed', () => {
    demo.resumes += 1;
    notice('resumed', 'Resumed: nothing was lost, and nobody saw you go.');
  });
}

function joined(room) {
  clearTimeout(retryTimer);
  retryTimer = null;
  retryDelay = RETRY_FIRST_MS;
  demo.timings.joinedAt = now();
  demo.ownId = room.getLocalPeer().id;
  if (lostConnection) {
    lostConnection = false;
    demo.reconnects += 1;
    notice('reconnected', 'Reconnected to the server.');
  }
  room.getRemotePeers().forEach(addPeer);
  setState('joined');
}

function serverOrSocketError(type, detail) {
  if (type !== 'server') {
    return;  // a socket that fails also closes: signaling_close retries
  }
  notice('error', `The server says: ${detail}`);
  if (demo.state === 'connecting' || demo.state === 'reconnecting') {
    // Before joined_room, an error is the server refusing join_room (a full room, a
    // blank name...): trying again will not help.
    stop('idle');
  }
}

function refuse(text) {
  notice('error', text);
  stop('idle');
}

// --- remote peers: a list entry and a video tile each ---

function addPeer(peer) {
  if (demo.peers[peer.id]) {
    return;
  }
  demo.peers[peer.id] = { name: displayName(peer), connected: false, hasTrack: false };
  peer.on('message', (data) => { received(peer, data); });
  $('videos').appendChild(peerTile(peer));
  $('peer-list').appendChild(peerEntry(peer));
  showRemoteStream(peer);
  renderPeerList();
}

function removePeer(id) {
  delete demo.peers[id];
  const tile = $('tile-' + id);
  if (tile) {
    tile.querySelector('video').srcObject = null;
    tile.remove();
  }
  const entry = $('peer-' + id);
  if (entry) {
    entry.remove();
  }
  renderPeerList();
}

function clearPeers() {
  Object.keys(demo.peers).forEach(removePeer);
}

function updatePeer(peer) {
  const state = demo.peers[peer.id];
  if (state) {
    state.name = displayName(peer);
    $('peer-' + peer.id).querySelector('.name').textContent = state.name;
    $('tile-' + peer.id).querySelector('figcaption').textContent = state.name;
  }
}

function setConnected(peer, connected) {
  const state = demo.peers[peer.id];
  if (!state) {
    return;
  }
  state.connected = connected;
  if (connected && !(peer.id in demo.timings.connectedAt)) {
    demo.timings.connectedAt[peer.id] = now();
  }
  const label = $('peer-' + peer.id).querySelector('.state');
  label.textContent = connected ? 'connected' : 'connecting…';
  label.classList.toggle('connected', connected);
}

function displayName(peer) {
  return (peer.status && peer.status.name) || 'someone';
}

function peerTile(peer) {
  const tile = document.createElement('figure');
  tile.className = 'tile remote';
  tile.id = 'tile-' + peer.id;
  const video = document.createElement('video');
  video.id = 'video-' + peer.id;
  video.autoplay = true;
  video.playsInline = true;
  video.addEventListener('loadeddata', () => {
    if (!(peer.id in demo.timings.videoAt)) {
      demo.timings.videoAt[peer.id] = now();
    }
  });
  // A click unmutes a video that the browser would only autoplay muted.
  video.addEventListener('click', () => { video.muted = false; video.play().catch(() => {}); });
  const caption = document.createElement('figcaption');
  caption.textContent = displayName(peer);
  tile.append(video, caption);
  return tile;
}

function peerEntry(peer) {
  const entry = document.createElement('li');
  entry.id = 'peer-' + peer.id;
  entry.dataset.peerId = peer.id;
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = displayName(peer);
  const state = document.createElement('span');
  state.className = 'state';
  state.textContent = 'connecting…';
  entry.append(name, state);
  return entry;
}

function renderPeerList() {
  const empty = $('peer-list').querySelector('.empty');
  empty.hidden = Object.keys(demo.peers).length > 0;
}

// --- media ---

function showLocalStream(stream) {
  const video = $('local-video');
  if (stream && video.srcObject !== stream) {
    video.srcObject = stream;
  }
}

function showRemoteStream(peer) {
  const state = demo.peers[peer.id];
  const video = $('video-' + peer.id);
  if (!state || !video) {
    return;
  }
  const stream = peer.getStream();
  state.hasTrack = !!stream && stream.getVideoTracks().some((t) => t.readyState === 'live');
  play(video, stream);
}

// --- chat: `message` events through the server to every remote peer ---

function sendChat(text) {
  const room = session && session.getRoom();
  if (!room || demo.state !== 'joined') {
    return;
  }
  room.getRemotePeers().forEach((peer) => peer.sendMessage({ type: 'chat', text: text }));
  addChatLine(demo.chat, { fromId: demo.ownId, name: demo.name, text: text, own: true, at: now() });
}

function received(peer, data) {
  if (data && data.type === 'chat' && typeof data.text === 'string') {
    // The sender's name is the one the server holds for that peer, not one in the message.
    addChatLine(demo.chat, { fromId: peer.id, name: displayName(peer),
                             text: data.text.slice(0, MAX_CHAT_TEXT), own: false, at: now() });
  }
}

// --- notices and the status line ---

function notice(kind, text) {
  addNotice(demo.notices, kind, text);
}

function setState(state) {
  demo.state = state;
  const status = $('status');
  status.dataset.state = state;
  status.textContent = {
    idle: 'not connected',
    connecting: 'joining…',
    joined: `in room “${demo.roomId}” as ${demo.name}`,
    reconnecting: 'reconnecting…',
    left: 'left the room',
  }[state];
  const inCall = state !== 'idle' && state !== 'left';
  $('room').disabled = inCall;
  $('name').disabled = inCall;
  $('join').hidden = inCall;
  $('leave').hidden = !inCall;
  $('chat-input').disabled = state !== 'joined';
  $('chat-send').disabled = state !== 'joined';
  $('local-name').textContent = demo.name ? `${demo.name} (you)` : 'you';
}

// --- the page's controls ---

function start() {
  if (typeof palava === 'undefined') {
    notice('error', 'The palava-client library did not load (palava.bundle.js); reload the page.');
    $('join').disabled = true;
    return;
  }
  $('palava-version').textContent = palava.LIB_VERSION;
  const params = new URLSearchParams(location.search);
  useResumableSockets(palava, {
    resumable: params.get('resume') !== 'off',
    join: params.get('token') ? { token: params.get('token') } : {},
    onSocket: watchSocket,
  });
  wireControls({ join, leave: () => stop('left'), chat: sendChat, inRoom: () => !!session });
  setState('idle');
  joinIfNamed();
}

start();
