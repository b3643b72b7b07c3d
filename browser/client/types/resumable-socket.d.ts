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
    /**
     * @param {string} url
     * @param {ResumableOptions} [options]
     */
    constructor(url: string, options?: ResumableOptions);
    /** @type {((event: Event) => void) | null} */
    onopen: ((event: Event) => void) | null;
    /** @type {((event: MessageEvent) => void) | null} */
    onmessage: ((event: MessageEvent) => void) | null;
    /** @type {((event: Event) => void) | null} */
    onerror: ((event: Event) => void) | null;
    /** @type {((event: CloseEvent) => void) | null} */
    onclose: ((event: CloseEvent) => void) | null;
    url: string;
    resumeWithinMs: number;
    resumable: boolean;
    join: Record<string, unknown>;
    /**
     * Listen to one of the socket's events, typed by its name (`ResumableSocketEventMap`: a
     * name not there is an error for TypeScript); returns what stops listening.
     * @template {keyof ResumableSocketEventMap} K
     * @param {K} type
     * @param {(event: ResumableSocketEventMap[K]) => void} listener
     * @returns {() => void}
     */
    on<K extends keyof ResumableSocketEventMap>(type: K, listener: (event: ResumableSocketEventMap[K]) => void): () => void;
    get readyState(): number;
    /** Whether a resume is under way (the socket is OPEN to the code above meanwhile). */
    get resuming(): boolean;
    /** @param {string} text  one client frame, as JSON */
    send(text: string): void;
    /**
     * @param {number} [code]
     * @param {string} [reason]
     */
    close(code?: number, reason?: string): void;
    #private;
}
export type ResumableOptions = {
    /**
     * how long to try (the service's grace period,
     * SWITCHBOARD_RESUME_GRACE_S, 15 s by default)
     */
    resumeWithinMs?: number | undefined;
    /**
     * false: a plain WebSocket, that asks for no resume
     */
    resumable?: boolean | undefined;
    /**
     * fields added to every join_room (a join
     * `token`, say)
     */
    join?: Record<string, unknown> | undefined;
};
/**
 * The socket's events beside the WebSocket ones, by name (see above): what `on` types.
 */
export type ResumableSocketEventMap = {
    open: Event;
    message: MessageEvent;
    error: Event;
    close: CloseEvent;
    frame: CustomEvent<Record<string, unknown>>;
    joined: CustomEvent<Record<string, unknown>>;
    resuming: CustomEvent<{
        code: number;
    }>;
    resumed: CustomEvent<undefined>;
    removed: CustomEvent<{
        reason: "removed" | "closed" | "expired";
    }>;
};
