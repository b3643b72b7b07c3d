/* Switchboard broadcast: one presenter and an audience, built on the browser library's
 * StarSession (/client/switchboard.js), the way a page of yours would use it.
 *
 * The first to join a room presents (the star room's host): its camera or screen goes to
 * every viewer, it sees its viewers and how each link stands, and it relays the chat.
 * Viewers watch and chat. When the presenter leaves, the viewer who came first presents,
 * and everyone else connects to it, without reloading. A dropped signaling connection is
 * resumed (the media never needed it).
 *
 * `?token=` is passed as the join token (where the service requires one). Its identity
 * names the peer: `info.name` (or `info.display_name`) is shown in place of the name typed
 * in; and a token with the host grant makes its bearer the presenter whenever it is in
 * the room, even when it joins after the viewers (docs/protocol.md, "Identities and
 * roles"). When the app removes the peer, or ends the room, the page says so and stays out.
 *
 * What the page shows is kept on `window.broadcast`, for tests and for the curious:
 *   state        'idle' | 'joining' | 'joined' | 'left' | 'removed'
 *   roomId, name (as others see it), peerId, hostId, isHost, hostName
 *   user         this peer's user id from its token, or null
 *   removed      why the app ended this peer's membership ('removed' | 'closed' |
 *                'expired'), or null
 *   link         a viewer's link to the presenter: 'negotiating' | 'connecting' |
 *                'connected' | 'disconnected' | null
 *   states       {peerId: connectionState}, from the presenter (StarSession's `peers`)
 *   chat         [{fromId, name, text, own, at}]
 *   notices      [{kind, text, at}]   kind: 'host' | 'error' | 'media' | 'resuming' |
 *                'resumed' | 'removed' | 'server'
 *   hostChanges  how many times the presenter changed since joining
 *   resumes      how many times the signaling connection dropped and was resumed
 *   timings      epoch ms: joinedAt, connectedAt, videoAt (first frame of the presenter),
 *                hostChangedAt and reconnectedAt (the latest handover)
 */
import { StarSession } from '/client/switchboard.js';
import {
  $, MAX_CHAT_TEXT, addChatLine, addNotice, joinIfNamed, now, play, rememberRoomInAddress,
  wireControls,
} from './page.js';

/** The broadcast this page is in: its StarSession, its media, and what the page shows. */
class Broadcast {
  constructor() {
    // What the page shows, also kept on `window.broadcast` (above).
    this.view = {
      state: 'idle',
      roomId: null,
      name: null,
      peerId: null,
      hostId: null,
      isHost: false,
      hostName: null,
      user: null,
      removed: null,
      link: null,
      states: {},
      chat: [],
      notices: [],
      hostChanges: -1,
      resumes: 0,
      timings: {},
    };
    /** @type {StarSession | null} */
    this.session = null;
    /** @type {MediaStream | null} what this page presents (camera or screen) */
    this.presenting = null;
    /** @type {MediaStream | null} */
    this.camera = null;
  }

  // --- joining and leaving ---

  join(roomId, name) {
    const view = this.view;
    Object.assign(view, { roomId, name, hostChanges: -1, timings: {}, states: {},
                          removed: null });
    const token = new URLSearchParams(location.search).get('token') || undefined;
    const session = this.session = new StarSession({ room: roomId, status: { name }, token });
    this.listen(session);
    rememberRoomInAddress(roomId);
    this.setState('joining');
    session.start().then(() => {
      view.timings.joinedAt = now();
      view.peerId = session.peerId;
      const own = session.identityOf(session.peerId);
      view.user = own?.user ?? null;
      view.name = nameIn(own) ?? name;
      this.setState('joined');
    }).catch((error) => {
      this.notice('error', `Cannot join: ${error.message}`);
      this.stop('idle');
    });
  }

  stop(state) {
    if (this.session) {
      const ending = this.session;
      this.session = null;
      ending.close();
    }
    this.stopPresenting();
    play($('stage-video'), null);
    Object.assign(this.view, { link: null, states: {}, isHost: false });
    this.renderAudience();
    this.setState(state);
  }

  // --- what the session reports ---

  listen(s) {
    s.addEventListener('host', ({ detail }) => this.hostIs(detail.hostId));
    s.addEventListener('stream', ({ detail }) => {
      if (!s.isHost && detail.peerId === s.hostId) {
        this.showStage(detail.stream, this.view.hostName);
      }
    });
    for (const type of ['negotiating', 'connecting', 'connected', 'disconnected']) {
      s.addEventListener(type, ({ detail }) => this.linkIs(type, detail.peerId));
    }
    s.addEventListener('peers', ({ detail }) => {
      this.view.states = detail.states;
      this.renderAudience();
    });
    s.addEventListener('message', ({ detail }) => this.received(detail.senderId, detail.data));
    s.addEventListener('error', ({ detail }) => this.notice('error', detail.message));
    s.addEventListener('resuming', () => this.notice('resuming',
      'Lost the connection to the server; resuming (the broadcast goes on)…'));
    s.addEventListener('resumed', () => {
      this.view.resumes += 1;
      this.notice('resumed', 'Resumed: nothing was lost, and nobody saw you go.');
    });
    s.addEventListener('server_message', ({ detail }) => this.notice('server',
      `From the app: ${typeof detail.data?.text === 'string' ? detail.data.text
        : JSON.stringify(detail.data)}`));
    s.addEventListener('removed', ({ detail }) => {
      if (this.session === s) {
        this.view.removed = detail.reason;
        this.notice('removed', detail.reason === 'removed' ? 'You were removed by the app.'
          : `The session ended${detail.reason === 'expired' ? ': its time is up' : ''}.`);
        this.stop('removed');
      }
    });
    s.addEventListener('closed', () => {
      if (this.session === s) {
        this.stop('idle');
      }
    });
  }

  hostIs(hostId) {
    const view = this.view;
    const session = this.session;
    view.hostId = hostId;
    view.isHost = session.isHost;
    view.peerId = session.peerId;
    view.hostName = this.displayName(hostId);
    view.hostChanges += 1;
    view.link = null;
    view.states = {};
    if (view.hostChanges > 0) {
      view.timings.hostChangedAt = now();
      this.notice('host', session.isHost ? 'You are presenting now.'
        : `${view.hostName} is presenting now.`);
    }
    if (session.isHost) {
      this.present();
    } else {
      this.stopPresenting();  // a presenter by the host grant took over
      this.showStage(null, view.hostName);
    }
    this.renderAudience();
    this.setState(view.state);
  }

  linkIs(type, peerId) {
    const view = this.view;
    if (!this.session.isHost && peerId === this.session.hostId) {
      view.link = type;
      if (type === 'connected') {
        view.timings.connectedAt ??= now();
        if (view.hostChanges > 0) {
          view.timings.reconnectedAt = now();
        }
      }
    }
    this.renderAudience();
  }

  // --- the stage: the presenter's camera or screen ---

  async present() {
    if (this.presenting) {
      this.session.setStream(this.presenting);
      this.showStage(this.presenting, 'you');
      return;
    }
    let camera;
    try {
      camera = this.camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    } catch (error) {
      this.notice('media', `No camera (${error.name || error}): you present the chat only.`);
      return;
    }
    if (!this.session || !this.session.isHost) {
      camera.getTracks().forEach((track) => track.stop());
      if (this.camera === camera) {
        this.camera = null;
      }
      return;  // the page left, or someone else presents, meanwhile
    }
    this.presenting = camera;
    this.session.setStream(camera);
    this.showStage(camera, 'you');
  }

  stopPresenting() {
    for (const stream of [this.presenting, this.camera]) {
      stream?.getTracks().forEach((track) => track.stop());
    }
    if (this.presenting) {
      this.session?.setStream(null);
    }
    this.presenting = this.camera = null;
  }

  async shareScreen() {
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch (error) {
      this.notice('media', `No screen to share (${error.name || error}).`);
      return;
    }
    this.presenting = screen;
    this.session.setStream(screen);
    this.showStage(screen, 'you (screen)');
    screen.getVideoTracks()[0].addEventListener('ended', () => this.shareCamera());
    this.renderButtons();
  }

  shareCamera() {
    const camera = this.camera;
    if (camera && this.session && this.session.isHost) {
      this.presenting?.getTracks().forEach((track) => { if (!camera.getTracks().includes(track)) track.stop(); });
      this.presenting = camera;
      this.session.setStream(camera);
      this.showStage(camera, 'you');
    }
    this.renderButtons();
  }

  showStage(stream, who) {
    const video = $('stage-video');
    video.muted = this.session ? this.session.isHost : true;
    video.onloadeddata = () => {
      if (!this.session?.isHost) {
        this.view.timings.videoAt ??= now();
      }
    };
    play(video, stream);
    $('stage-name').textContent = stream ? `presenting: ${who}`
      : (who ? `waiting for ${who}…` : 'nobody is presenting yet');
    this.renderButtons();
  }

  // --- the audience: who watches, and how each link stands ---

  renderAudience() {
    const view = this.view;
    const session = this.session;
    const list = $('peer-list');
    list.replaceChildren();
    const others = Object.entries(view.states).filter(([id]) => id !== view.peerId
      && id !== view.hostId);
    if (session && session.isHost) {
      $('audience-title').textContent = `Audience (${others.length})`;
      for (const [peerId, state] of others) {
        list.appendChild(entry(peerId, this.displayName(peerId), state));
      }
    } else if (session && view.hostId) {
      $('audience-title').textContent = `Presenter${others.length ? ` and ${others.length} more watching` : ''}`;
      list.appendChild(entry(view.hostId, view.hostName, view.link || 'waiting', 'presenter'));
    }
    if (!list.children.length) {
      const empty = document.createElement('li');
      empty.className = 'empty';
      empty.textContent = 'nobody yet';
      list.appendChild(empty);
    }
  }

  /** The name the app gave the peer in its token, else the one it chose, else 'someone'. */
  displayName(peerId) {
    const session = this.session;
    return (session && (nameIn(session.identityOf(peerId)) || session.statusOf(peerId)?.name))
      || 'someone';
  }

  // --- chat: through the presenter, which relays it to everyone ---

  sendChat(text) {
    const view = this.view;
    if (!this.session || view.state !== 'joined') {
      return;
    }
    this.session.send({ type: 'chat', name: view.name, text });
    addChatLine(view.chat, { fromId: view.peerId, name: view.name, text, own: true, at: now() });
  }

  received(senderId, data) {
    if (data && data.type === 'chat' && typeof data.text === 'string') {
      const name = typeof data.name === 'string' ? data.name.slice(0, 50) : 'someone';
      addChatLine(this.view.chat, { fromId: senderId, name,
                                    text: data.text.slice(0, MAX_CHAT_TEXT), own: false, at: now() });
    }
  }

  // --- notices, status line, buttons ---

  notice(kind, text) {
    addNotice(this.view.notices, kind, text);
  }

  setState(state) {
    const view = this.view;
    view.state = state;
    const status = $('status');
    status.dataset.state = state === 'joining' ? 'connecting' : state;
    const role = view.isHost ? 'presenting' : 'watching';
    status.textContent = {
      idle: 'not connected',
      joining: 'joining…',
      joined: `in “${view.roomId}” as ${view.name}, ${role}`,
      left: 'left the room',
      removed: view.removed === 'removed' ? 'removed by the app' : 'the session ended',
    }[state];
    const inRoom = state === 'joining' || state === 'joined';
    $('room').disabled = inRoom;
    $('name').disabled = inRoom;
    $('join').hidden = inRoom;
    $('leave').hidden = !inRoom;
    $('chat-input').disabled = state !== 'joined';
    $('chat-send').disabled = state !== 'joined';
    this.renderButtons();
  }

  renderButtons() {
    const { session, presenting, camera } = this;
    const hosting = !!session && session.isHost && this.view.state === 'joined';
    $('share-screen').hidden = !hosting || !navigator.mediaDevices.getDisplayMedia
      || (presenting !== null && presenting !== camera);
    $('share-camera').hidden = !hosting || !camera || presenting === camera;
  }
}

function entry(peerId, name, state, role = '') {
  const item = document.createElement('li');
  item.id = 'peer-' + peerId;
  item.dataset.peerId = peerId;
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  const badge = document.createElement('span');
  badge.className = 'state' + (state === 'connected' ? ' connected' : '');
  badge.textContent = state;
  if (role) {
    const tag = document.createElement('span');
    tag.className = 'role';
    tag.textContent = role;
    item.append(label, tag, badge);
  } else {
    item.append(label, badge);
  }
  return item;
}

/** The display name an identity from the app carries (`info.name`, `info.display_name`). */
function nameIn(identity) {
  const info = identity && identity.info;
  const name = info && [info.name, info.display_name].find((value) => typeof value === 'string'
    && value.trim() !== '');
  return name ? name.slice(0, 50) : undefined;
}

function start() {
  const page = new Broadcast();
  window.broadcast = page.view;
  wireControls({
    join: (roomId, name) => page.join(roomId, name),
    leave: () => page.stop('left'),
    chat: (text) => page.sendChat(text),
    inRoom: () => !!page.session,
  });
  $('share-screen').addEventListener('click', () => page.shareScreen());
  $('share-camera').addEventListener('click', () => page.shareCamera());
  page.setState('idle');
  joinIfNamed();
}

start();
