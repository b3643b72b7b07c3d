/* Switchboard demo: a mesh video call with the palava-client library (palava.bundle.js).
 *
 * palava-client does the WebRTC work (getUserMedia, one RTCPeerConnection per remote
 * peer, offers, answers and ICE candidates through the server); this page draws what its
 * session reports and adds a chat over `send_to_peer` `message` events. Its signaling
 * socket resumes after a drop (palava-resume.js): the call goes on and the others see
 * nothing. When a resume cannot be had, it joins again as a new peer, with backoff; not
 * after the app removed it (docs/protocol.md, "Removal"): then it says so and stays out.
 * `?token=` is passed as the join token; `?resume=off` joins without resume.
 *
 * What the page shows is also kept on `window.demo`, for tests and for the curious:
 *   state       'idle' | 'connecting' | 'joined' | 'reconnecting' | 'left' | 'removed'
 *   roomId, name, ownId
 *   peers       {peerId: {name, connected, hasTrack}}    the remote peers
 *   chat        [{fromId, name, text, own, at}]
 *   notices     [{kind, text, at}]   kind: 'shutdown' | 'error' | 'connection' |
 *               'reconnected' | 'media' | 'resuming' | 'resumed' | 'removed'
 *   timings     {joinSentAt, joinedAt, connectedAt: {peerId: t}, videoAt: {peerId: t}} of
 *               the latest join, in epoch milliseconds: join_room sent, joined_room
 *               received, palava's peer_connection_established, first remote video frame
 *   reconnects  how many times the page joined again after losing the server
 *   resumes     how many times its socket dropped and was resumed
 *   peersLeft   how many peer_left it was told of (since the page opened)
 */
import { Backoff, gatewayUrl } from '/client/switchboard.js';
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

function newTimings() {
  return {
    joinCalledAt: null, openAt: null, joinSentAt: null, joinedAt: null, connectedAt: {}, videoAt: {},
  };
}

/** The call this page is in: its palava session, and what the page shows of it. */
class MeshCall {
  constructor() {
    // What the page shows, also kept on `window.demo` (above).
    this.view = {
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
    this.session = null;
    this.retryTimer = null;
    this.backoff = new Backoff();
    this.lostConnection = false;
  }

  // --- session life: join, lose the server, join again, leave ---

  join(roomId, name) {
    const view = this.view;
    view.roomId = roomId;
    view.name = name;
    view.ownId = null;
    this.backoff.reset();
    this.lostConnection = false;
    this.session = new palava.Session({
      roomId: roomId,
      // The host this page came from, so any replica works.
      webSocketAddress: gatewayUrl(),
      // palava.Identity copies its `name` option into the status it sends (status.name).
      identity: new palava.Identity({ userMediaConfig: { video: true, audio: true }, name: name }),
      stun: STUN,
      joinTimeout: JOIN_TIMEOUT_MS,
    });
    this.listen(this.session);
    rememberRoomInAddress(roomId);
    this.open();
  }

  open() {
    this.clearPeers();
    this.view.timings = newTimings();
    this.setState(this.lostConnection ? 'reconnecting' : 'connecting');
    // Resolves once palava has handed join_room to its socket (after getUserMedia).
    Promise.resolve(this.session.connect({})).then(() => {
      if (this.session && this.session.getRoom()) {
        this.view.timings.joinCalledAt = now();
        this.noteJoinSent();
      }
    });
  }

  noteJoinSent() {
    // join_room leaves when palava has called join *and* the socket is open.
    const t = this.view.timings;
    if (t.joinSentAt === null && t.joinCalledAt !== null && t.openAt !== null) {
      t.joinSentAt = Math.max(t.joinCalledAt, t.openAt);
    }
  }

  connectionLost(reason) {
    if (this.retryTimer !== null || this.view.state === 'idle' || this.view.state === 'left') {
      return;
    }
    this.lostConnection = true;
    this.clearPeers();
    this.setState('reconnecting');
    const delay = this.backoff.next();
    this.notice('connection', `${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s.`);
    this.retryTimer = setTimeout(() => this.reconnect(), delay);
  }

  reconnect() {
    this.retryTimer = null;
    this.session.tearDown(false);  // keep the camera: the next join reuses its stream
    this.open();
  }

  stop(state) {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.session) {
      this.session.removeAllListeners();
      this.session.destroy();  // sends leave_room, closes the socket and the camera
      this.session = null;
    }
    this.clearPeers();
    $('local-video').srcObject = null;
    this.setState(state);
  }

  // --- what palava-client reports ---

  listen(s) {
    // Block bodies throughout: palava's EventEmitter drops a listener that returns true.
    const on = (event, handler) => s.on(event, (...args) => { handler(...args); });
    on('signaling_open', () => {
      this.view.timings.openAt = now();
      this.noteJoinSent();
    });
    on('room_joined', (room) => this.joined(room));
    on('room_join_error', () => this.connectionLost('The server did not answer the join in time'));
    on('peer_joined', (peer) => this.addPeer(peer));
    on('peer_left', (peer) => { this.view.peersLeft += 1; this.removePeer(peer.id); });
    on('peer_update', (peer) => { if (!peer.isLocal()) this.updatePeer(peer); });
    on('local_stream_ready', showLocalStream);
    on('peer_stream_ready', (peer) => {
      if (peer.isLocal()) showLocalStream(peer.getStream()); else this.showRemoteStream(peer);
    });
    on('peer_stream_removed', (peer) => { if (!peer.isLocal()) this.showRemoteStream(peer); });
    on('peer_connection_established', (peer) => this.setConnected(peer, true));
    on('peer_connection_failed', (peer) => this.setConnected(peer, false));
    on('peer_connection_disconnected', (peer) => this.setConnected(peer, false));
    on('peer_connection_closed', (peer) => this.setConnected(peer, false));
    on('local_stream_error', (error) => this.notice('media',
      `No camera or microphone (${(error && error.name) || error}): you can watch and chat, but not be seen.`));
    on('signaling_error', (type, detail) => this.serverOrSocketError(type, detail));
    on('signaling_shutdown', (seconds) => this.notice('shutdown',
      `The server is restarting in ${seconds} s; this page will reconnect by itself.`));
    on('signaling_close', () => this.connectionLost('Lost the connection to the server'));
    on('signaling_not_reachable', () => this.connectionLost('Cannot reach the server'));
    on('argument_error', (text) => this.refuse(`Cannot start: ${text}.`));
    on('webrtc_no_support', (text) => this.refuse(`${text}.`));
  }

  watchSocket(socket) {
    socket.addEventListener('joined', ({ detail }) => {
      // Before palava-client reads the frame: its peer connections take these servers.
      if (this.session) {
        Object.assign(this.session.roomOptions, palavaIceOptions(detail.ice_servers));
      }
    });
    socket.addEventListener('resuming', () => this.notice('resuming',
      'Lost the connection to the server; resuming (the call goes on)…'));
    socket.addEventListener('resumed', () => {
      this.view.resumes += 1;
      this.notice('resumed', 'Resumed: nothing was lost, and nobody saw you go.');
    });
    // Before palava-client hears the socket close (and would join again).
    socket.addEventListener('removed', ({ detail }) => {
      this.notice('removed', detail.reason === 'removed' ? 'You were removed by the app.'
        : `The session ended${detail.reason === 'expired' ? ': its time is up' : ''}.`);
      this.stop('removed');
    });
  }

  joined(room) {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.backoff.reset();
    this.view.timings.joinedAt = now();
    this.view.ownId = room.getLocalPeer().id;
    if (this.lostConnection) {
      this.lostConnection = false;
      this.view.reconnects += 1;
      this.notice('reconnected', 'Reconnected to the server.');
    }
    room.getRemotePeers().forEach((peer) => this.addPeer(peer));
    this.setState('joined');
  }

  serverOrSocketError(type, detail) {
    if (type !== 'server') {
      return;  // a socket that fails also closes: signaling_close retries
    }
    this.notice('error', `The server says: ${detail}`);
    if (this.view.state === 'connecting' || this.view.state === 'reconnecting') {
      // Before joined_room, an error is the server refusing join_room (a full room, a
      // blank name...): trying again will not help.
      this.stop('idle');
    }
  }

  refuse(text) {
    this.notice('error', text);
    this.stop('idle');
  }

  // --- remote peers: a list entry and a video tile each ---

  addPeer(peer) {
    const peers = this.view.peers;
    if (peers[peer.id]) {
      return;
    }
    peers[peer.id] = { name: displayName(peer), connected: false, hasTrack: false };
    peer.on('message', (data) => { this.received(peer, data); });
    $('videos').appendChild(peerTile(peer, this.view));
    $('peer-list').appendChild(peerEntry(peer));
    this.showRemoteStream(peer);
    renderPeerList(peers);
  }

  removePeer(id) {
    delete this.view.peers[id];
    const tile = $('tile-' + id);
    if (tile) {
      tile.querySelector('video').srcObject = null;
      tile.remove();
    }
    const entry = $('peer-' + id);
    if (entry) {
      entry.remove();
    }
    renderPeerList(this.view.peers);
  }

  clearPeers() {
    Object.keys(this.view.peers).forEach((id) => this.removePeer(id));
  }

  updatePeer(peer) {
    const state = this.view.peers[peer.id];
    if (state) {
      state.name = displayName(peer);
      $('peer-' + peer.id).querySelector('.name').textContent = state.name;
      $('tile-' + peer.id).querySelector('figcaption').textContent = state.name;
    }
  }

  setConnected(peer, connected) {
    const state = this.view.peers[peer.id];
    if (!state) {
      return;
    }
    state.connected = connected;
    const connectedAt = this.view.timings.connectedAt;
    if (connected && !(peer.id in connectedAt)) {
      connectedAt[peer.id] = now();
    }
    const label = $('peer-' + peer.id).querySelector('.state');
    label.textContent = connected ? 'connected' : 'connecting…';
    label.classList.toggle('connected', connected);
  }

  showRemoteStream(peer) {
    const state = this.view.peers[peer.id];
    const video = $('video-' + peer.id);
    if (!state || !video) {
      return;
    }
    const stream = peer.getStream();
    state.hasTrack = !!stream && stream.getVideoTracks().some((t) => t.readyState === 'live');
    play(video, stream);
  }

  // --- chat: `message` events through the server to every remote peer ---

  sendChat(text) {
    const view = this.view;
    const room = this.session && this.session.getRoom();
    if (!room || view.state !== 'joined') {
      return;
    }
    room.getRemotePeers().forEach((peer) => peer.sendMessage({ type: 'chat', text: text }));
    addChatLine(view.chat, { fromId: view.ownId, name: view.name, text: text, own: true, at: now() });
  }

  received(peer, data) {
    if (data && data.type === 'chat' && typeof data.text === 'string') {
      // The sender's name is the one the server holds for that peer, not one in the message.
      addChatLine(this.view.chat, { fromId: peer.id, name: displayName(peer),
                                    text: data.text.slice(0, MAX_CHAT_TEXT), own: false, at: now() });
    }
  }

  // --- notices and the status line ---

  notice(kind, text) {
    addNotice(this.view.notices, kind, text);
  }

  setState(state) {
    const view = this.view;
    view.state = state;
    const status = $('status');
    status.dataset.state = state;
    status.textContent = {
      idle: 'not connected',
      connecting: 'joining…',
      joined: `in room “${view.roomId}” as ${view.name}`,
      reconnecting: 'reconnecting…',
      left: 'left the room',
      removed: 'removed from the room',
    }[state];
    const inCall = state !== 'idle' && state !== 'left' && state !== 'removed';
    $('room').disabled = inCall;
    $('name').disabled = inCall;
    $('join').hidden = inCall;
    $('leave').hidden = !inCall;
    $('chat-input').disabled = state !== 'joined';
    $('chat-send').disabled = state !== 'joined';
    $('local-name').textContent = view.name ? `${view.name} (you)` : 'you';
  }
}

// --- how a peer is drawn ---

function displayName(peer) {
  return (peer.status && peer.status.name) || 'someone';
}

/** A video tile for `peer`, which notes its first frame in the view's timings. */
function peerTile(peer, view) {
  const tile = document.createElement('figure');
  tile.className = 'tile remote';
  tile.id = 'tile-' + peer.id;
  const video = document.createElement('video');
  video.id = 'video-' + peer.id;
  video.autoplay = true;
  video.playsInline = true;
  video.addEventListener('loadeddata', () => {
    if (!(peer.id in view.timings.videoAt)) {
      view.timings.videoAt[peer.id] = now();
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

function renderPeerList(peers) {
  const empty = $('peer-list').querySelector('.empty');
  empty.hidden = Object.keys(peers).length > 0;
}

function showLocalStream(stream) {
  const video = $('local-video');
  if (stream && video.srcObject !== stream) {
    video.srcObject = stream;
  }
}

// --- the page's controls ---

function start() {
  const call = new MeshCall();
  window.demo = call.view;
  if (typeof palava === 'undefined') {
    call.notice('error', 'The palava-client library did not load (palava.bundle.js); reload the page.');
    $('join').disabled = true;
    return;
  }
  $('palava-version').textContent = palava.LIB_VERSION;
  const params = new URLSearchParams(location.search);
  useResumableSockets(palava, {
    resumable: params.get('resume') !== 'off',
    join: params.get('token') ? { token: params.get('token') } : {},
    onSocket: (socket) => call.watchSocket(socket),
  });
  wireControls({
    join: (roomId, name) => call.join(roomId, name),
    leave: () => call.stop('left'),
    chat: (text) => call.sendChat(text),
    inRoom: () => !!call.session,
  });
  call.setState('idle');
  joinIfNamed();
}

start();
