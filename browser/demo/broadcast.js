/* Switchboard broadcast: one presenter and an audience, built on the browser library's
 * StarSession (/client/switchboard.js), the way a page of yours would use it.
 *
 * The first to join a room presents (the star room's host): its camera or screen goes to
 * every viewer, it sees its viewers and how each link stands, and it relays the chat.
 * Viewers watch and chat. When the presenter leaves, the viewer who came first presents,
 * and everyone else connects to it, without reloading. A dropped signaling connection is
 * resumed (the media never needed it). `?token=` is passed as the join token.
 *
 * What the page shows is kept on `window.broadcast`, for tests and for the curious:
 *   state        'idle' | 'joining' | 'joined' | 'left'
 *   roomId, name, peerId, hostId, isHost, hostName
 *   link         a viewer's link to the presenter: 'negotiating' | 'connecting' |
 *                'connected' | 'disconnected' | null
 *   states       {peerId: connectionState}, from the presenter (StarSession's `peers`)
 *   chat         [{fromId, name, text, own, at}]
 *   notices      [{kind, text, at}]   kind: 'host' | 'error' | 'media' | 'resuming' |
 *                'resumed'
 *   hostChanges  how many times the presenter changed since joining
 *   resumes      how many times the signaling connection dropped and was resumed
 *   timings      epoch ms: joinedAt, connectedAt, videoAt (first frame of the presenter),
 *                hostChangedAt and reconnectedAt (the latest handover)
 */
import { StarSession } from '../client/switchboard.js';
import {
  $, MAX_CHAT_TEXT, addChatLine, addNotice, joinIfNamed, now, play, rememberRoomInAddress,
  wireControls,
} from './page.js';

const broadcast = window.broadcast = {
  state: 'idle',
  roomId: null,
  name: null,
  peerId: null,
  hostId: null,
  isHost: false,
  hostName: null,
  link: null,
  states: {},
  chat: [],
  notices: [],
  hostChanges: -1,
  resumes: 0,
  timings: {},
};

/** @type {StarSession | null} */
let session = null;
/** @type {MediaStream | null} what this page presents (camera or screen) */
let presenting = null;
/** @type {MediaStream | null} */
let camera = null;

// --- joining and leaving ---

function join(roomId, name) {
  Object.assign(broadcast, { roomId, name, hostChanges: -1, timings: {}, states: {} });
  const token = new URLSearchParams(location.search).get('token') || undefined;
  session = new StarSession({ room: roomId, status: { name }, token });
  listen(session);
  rememberRoomInAddress(roomId);
  setState('joining');
  session.start().then(() => {
    broadcast.timings.joinedAt = now();
    broadcast.peerId = session.peerId;
    setState('joined');
  }).catch((error) => {
    notice('error', `Cannot join: ${error.message}`);
    stop('idle');
  });
}

function stop(state) {
  if (session) {
    const ending = session;
    session = null;
    ending.close();
  }
  for (const stream of [presenting, camera]) {
    stream?.getTracks().forEach((track) => track.stop());
  }
  presenting = camera = null;
  play($('stage-video'), null);
  Object.assign(broadcast, { link: null, states: {}, isHost: false });
  renderAudience();
  setState(state);
}

// --- what the session reports ---

function listen(s) {
  s.addEventListener('host', ({ detail }) => hostIs(detail.hostId));
  s.addEventListener('stream', ({ detail }) => {
    if (!s.isHost && detail.peerId === s.hostId) {
      showStage(detail.stream, broadcast.hostName);
    }
  });
  for (const type of ['negotiating', 'connecting', 'connected', 'disconnected']) {
    s.addEventListener(type, ({ detail }) => linkIs(type, detail.peerId));
  }
  s.addEventListener('peers', ({ detail }) => {
    broadcast.states = detail.states;
    renderAudience();
  });
  s.addEventListener('message', ({ detail }) => received(detail.senderId, detail.data));
  s.addEventListener('error', ({ detail }) => notice('error', detail.message));
  s.addEventListener('resuming', () => notice('resuming',
    'Lost the connection to the server; resuming (the broadcast goes on)…'));
  s.addEventListener('resumed', () => {
    broadcast.resumes += 1;
    notice('resumed', 'Resumed: nothing was lost, and nobody saw you go.');
  });
  s.addEventListener('closed', () => {
    if (session === s) {
      stop('idle');
    }
  });
}

function hostIs(hostId) {
  broadcast.hostId = hostId;
  broadcast.isHost = session.isHost;
  broadcast.peerId = session.peerId;
  broadcast.hostName = displayName(hostId);
  broadcast.hostChanges += 1;
  broadcast.link = null;
  broadcast.states = {};
  if (broadcast.hostChanges > 0) {
    broadcast.timings.hostChangedAt = now();
    notice('host', session.isHost ? 'You are presenting now.'
      : `${broadcast.hostName} is presenting now.`);
  }
  if (session.isHost) {
    present();
  } else {
    showStage(null, broadcast.hostName);
  }
  renderAudience();
  setState(broadcast.state);
}

function linkIs(type, peerId) {
  if (!session.isHost && peerId === session.hostId) {
    broadcast.link = type;
    if (type === 'connected') {
      broadcast.timings.connectedAt ??= now();
      if (broadcast.hostChanges > 0) {
        broadcast.timings.reconnectedAt = now();
      }
    }
  }
  renderAudience();
}

// --- the stage: the presenter's camera or screen ---

async function present() {
  if (presenting) {
    session.setStream(presenting);
    showStage(presenting, 'you');
    return;
  }
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (error) {
    notice('media', `No camera (${error.name || error}): you present the chat only.`);
    return;
  }
  if (!session || !session.isHost) {
    return;  // the page left, or someone else presents, meanwhile
  }
  presenting = camera;
  session.setStream(camera);
  showStage(camera, 'you');
}

async function shareScreen() {
  let screen;
  try {
    screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  } catch (error) {
    notice('media', `No screen to share (${error.name || error}).`);
    return;
  }
  presenting = screen;
  session.setStream(screen);
  showStage(screen, 'you (screen)');
  screen.getVideoTracks()[0].addEventListener('ended', shareCamera);
  renderButtons();
}

function shareCamera() {
  if (camera && session && session.isHost) {
    presenting?.getTracks().forEach((track) => { if (!camera.getTracks().includes(track)) track.stop(); });
    presenting = camera;
    session.setStream(camera);
    showStage(camera, 'you');
  }
  renderButtons();
}

function showStage(stream, who) {
  const video = $('stage-video');
  video.muted = session ? session.isHost : true;
  video.onloadeddata = () => {
    if (!session?.isHost) {
      broadcast.timings.videoAt ??= now();
    }
  };
  play(video, stream);
  $('stage-name').textContent = stream ? `presenting: ${who}`
    : (who ? `waiting for ${who}…` : 'nobody is presenting yet');
  renderButtons();
}

// --- the audience: who watches, and how each link stands ---

function renderAudience() {
  const list = $('peer-list');
  list.replaceChildren();
  const others = Object.entries(broadcast.states).filter(([id]) => id !== broadcast.peerId
    && id !== broadcast.hostId);
  if (session && session.isHost) {
    $('audience-title').textContent = `Audience (${others.length})`;
    for (const [peerId, state] of others) {
      list.appendChild(entry(peerId, displayName(peerId), state));
    }
  } else if (session && broadcast.hostId) {
    $('audience-title').textContent = `Presenter${others.length ? ` and ${others.length} more watching` : ''}`;
    list.appendChild(entry(broadcast.hostId, broadcast.hostName, broadcast.link || 'waiting'));
  }
  if (!list.children.length) {
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'nobody yet';
    list.appendChild(empty);
  }
}

function entry(peerId, name, state) {
  const item = document.createElement('li');
  item.id = 'peer-' + peerId;
  item.dataset.peerId = peerId;
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  const badge = document.createElement('span');
  badge.className = 'state' + (state === 'connected' ? ' connected' : '');
  badge.textContent = state;
  item.append(label, badge);
  return item;
}

function displayName(peerId) {
  const status = session && session.statusOf(peerId);
  return (status && status.name) || 'someone';
}

// --- chat: through the presenter, which relays it to everyone ---

function sendChat(text) {
  if (!session || broadcast.state !== 'joined') {
    return;
  }
  session.send({ type: 'chat', name: broadcast.name, text });
  addChatLine(broadcast.chat, { fromId: broadcast.peerId, name: broadcast.name, text,
                                own: true, at: now() });
}

function received(senderId, data) {
  if (data && data.type === 'chat' && typeof data.text === 'string') {
    const name = typeof data.name === 'string' ? data.name.slice(0, 50) : 'someone';
    addChatLine(broadcast.chat, { fromId: senderId, name,
                                  text: data.text.slice(0, MAX_CHAT_TEXT), own: false, at: now() });
  }
}

// --- notices, status line, controls ---

function notice(kind, text) {
  addNotice(broadcast.notices, kind, text);
}

function setState(state) {
  broadcast.state = state;
  const status = $('status');
  status.dataset.state = state === 'joining' ? 'connecting' : state;
  const role = broadcast.isHost ? 'presenting' : 'watching';
  status.textContent = {
    idle: 'not connected',
    joining: 'joining…',
    joined: `in “${broadcast.roomId}” as ${broadcast.name}, ${role}`,
    left: 'left the room',
  }[state];
  const inRoom = state === 'joining' || state === 'joined';
  $('room').disabled = inRoom;
  $('name').disabled = inRoom;
  $('join').hidden = inRoom;
  $('leave').hidden = !inRoom;
  $('chat-input').disabled = state !== 'joined';
  $('chat-send').disabled = state !== 'joined';
  renderButtons();
}

function renderButtons() {
  const hosting = !!session && session.isHost && broadcast.state === 'joined';
  $('share-screen').hidden = !hosting || !navigator.mediaDevices.getDisplayMedia
    || (presenting !== null && presenting !== camera);
  $('share-camera').hidden = !hosting || !camera || presenting === camera;
}

function start() {
  wireControls({ join, leave: () => stop('left'), chat: sendChat, inRoom: () => !!session });
  $('share-screen').addEventListener('click', shareScreen);
  $('share-camera').addEventListener('click', shareCamera);
  setState('idle');
  joinIfNamed();
}

start();
