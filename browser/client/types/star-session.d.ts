/** A join the server refused (`room is full`, `wrong topology`, `not allowed`...). */
export class JoinRefused extends Error {
}
export class StarSession extends EventTarget {
    /** @param {StarSessionOptions} options */
    constructor(options: StarSessionOptions);
    /**
     * Listen to one of the session's events, typed by its name (`StarSessionEventMap`: a
     * name not there is an error for TypeScript); returns what stops listening.
     * `addEventListener` works as well, untyped.
     * @template {keyof StarSessionEventMap} K
     * @param {K} type
     * @param {(event: StarSessionEventMap[K]) => void} listener
     * @returns {() => void}
     */
    on<K extends keyof StarSessionEventMap>(type: K, listener: (event: StarSessionEventMap[K]) => void): () => void;
    /**
     * What the session was made with (a copy; `stream` follows `setStream`).
     * @type {StarSessionOptions}
     */
    options: StarSessionOptions;
    /** This peer's id, given by the server when it joins (it changes on a rejoin). */
    get peerId(): string | null;
    /** The host's peer id. */
    get hostId(): string | null;
    get isHost(): boolean;
    /**
     * A member's status as the server shows it to this peer (a client knows only the host's).
     * @param {string} peerId
     * @returns {Status | undefined}
     */
    statusOf(peerId: string): Status | undefined;
    /**
     * Who the app says a member is (this peer included), as the server shows it to this peer:
     * `{user, info}` from its join token, each undefined where the token had none (and both
     * in rooms without tokens); undefined for a peer that is not a member this peer knows of.
     * @param {string} peerId
     * @returns {Identity | undefined}
     */
    identityOf(peerId: string): Identity | undefined;
    /**
     * Connect and join the room as a star room. Resolves once joined; rejects with
     * `JoinRefused` when the server refuses the join, or an Error when it cannot be reached.
     */
    start(): Promise<void>;
    /**
     * Send `data` (anything JSON can carry) to the others: a client's goes to the host, which
     * delivers it and relays it to every other client; the host's goes to every client.
     * Nobody gets its own back. A client holds what it sends while it has no link to the host.
     * @param {unknown} data
     */
    send(data: unknown): void;
    /**
     * Send `stream` from now on instead of the one given before (a screen for a camera, say).
     * @param {MediaStream | null} stream
     */
    setStream(stream: MediaStream | null): void;
    /** Leave the room and close every link. */
    close(): void;
    #private;
}
export type Status = import("./signaling.js").Status;
export type PeerEntry = import("./signaling.js").PeerEntry;
export type Identity = import("./signaling.js").Identity;
export type Frame = import("./signaling.js").Frame;
export type Heartbeat = import("./peer-link.js").Heartbeat;
export type StarSessionOptions = {
    /**
     * the room's name (at most 50 characters)
     */
    room: string;
    /**
     * the gateway's WebSocket address; default: this page's host, `/`
     */
    url?: string | undefined;
    /**
     * `name` and `user_agent`, as the server keeps them
     */
    status?: import("./signaling.js").Status | undefined;
    /**
     * the host's reaches every client, a client's the host
     */
    stream?: MediaStream | null | undefined;
    /**
     * used unless the server sends `ice_servers`
     */
    iceServers?: RTCIceServer[] | undefined;
    /**
     * a join token, where the service requires one
     */
    token?: string | undefined;
    /**
     * DataChannel heartbeats; default none
     */
    heartbeat?: import("./peer-link.js").Heartbeat | null | undefined;
    /**
     * default true; false closes a client's socket once it
     * is connected to the host (it rejoins when that link is lost)
     */
    keepSignaling?: boolean | undefined;
    /**
     * default true: a dropped signaling socket is resumed, the
     * peer keeps its id and role; false rejoins as a new peer instead
     */
    resumable?: boolean | undefined;
};
/**
 * What each of a session's events carries (`event.detail`), by name: listeners added with
 * `on` are typed by it, and a name not here is an error for TypeScript.
 */
export type StarSessionEventMap = {
    negotiating: CustomEvent<{
        peerId: string;
    }>;
    connecting: CustomEvent<{
        peerId: string;
    }>;
    connected: CustomEvent<{
        peerId: string;
    }>;
    disconnected: CustomEvent<{
        peerId: string;
    }>;
    message: CustomEvent<{
        senderId: string;
        data: unknown;
    }>;
    peers: CustomEvent<{
        states: Record<string, string>;
    }>;
    host: CustomEvent<{
        hostId: string;
    }>;
    stream: CustomEvent<{
        peerId: string;
        stream: MediaStream;
    }>;
    error: CustomEvent<{
        message: string;
    }>;
    server_message: CustomEvent<{
        data: unknown;
    }>;
    removed: CustomEvent<{
        reason: "removed" | "closed" | "expired";
    }>;
    closed: CustomEvent<undefined>;
    resuming: CustomEvent<undefined>;
    resumed: CustomEvent<undefined>;
};
