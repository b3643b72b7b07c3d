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
    /**
     * @param {string} url  the gateway's WebSocket address, e.g. `wss://signal.example/`
     * @param {boolean} [resumable]  join resumable and resume after a drop (default true):
     *   a `close` comes only when a resume could not be had; `resuming` and `resumed`
     *   tell of one under way
     */
    constructor(url: string, resumable?: boolean);
    url: string;
    resumable: boolean;
    /**
     * Open the socket. Resolves once it is open; rejects when it closes before.
     * @returns {Promise<void>}
     */
    open(): Promise<void>;
    /** Whether frames can be sent now. */
    get isOpen(): boolean;
    /** Whether the socket dropped and is being resumed (frames sent meanwhile wait). */
    get resuming(): boolean;
    /**
     * Send one client frame; false when the socket is not open (the frame is not kept).
     * @param {string} event
     * @param {Record<string, unknown>} [fields]
     */
    send(event: string, fields?: Record<string, unknown>): boolean;
    /**
     * `data` to one peer of the room; the server adds `sender_id` (docs/protocol.md, send_to_peer).
     * @param {string} peerId
     * @param {{event: string} & Record<string, unknown>} data
     */
    sendToPeer(peerId: string, data: {
        event: string;
    } & Record<string, unknown>): boolean;
    /** Close the socket; no `close` event follows a close asked for here. */
    close(): void;
    #private;
}
/**
 * what the server keeps of a peer (docs/protocol.md, update_status)
 */
export type Status = {
    name?: string | undefined;
    user_agent?: string | undefined;
};
/**
 * a member as the server shows it (joined_room.peers, new_peer,
 *   host_changed.peers)
 */
export type PeerEntry = {
    peer_id: string;
    status: Status;
    /**
     * from its join token, when it had one: see `Identity`
     */
    user?: string | undefined;
    info?: Record<string, unknown> | undefined;
};
/**
 * who the app says a peer is (docs/protocol.md, "Identities and
 *   roles"): set by the service from the peer's join token, never by the peer itself
 */
export type Identity = {
    /**
     * the app's id for the user (several peers may share one)
     */
    user?: string | undefined;
    /**
     * public data from the app (a display name...)
     */
    info?: Record<string, unknown> | undefined;
};
/**
 * a server frame, as JSON
 */
export type Frame = {
    event: string;
} & Record<string, any>;
