export class PeerLink extends EventTarget {
    /** @param {LinkOptions} options */
    constructor(options: LinkOptions);
    options: LinkOptions;
    peerId: string;
    stream: MediaStream | null;
    /** @returns {LinkState} */
    get state(): LinkState;
    /** The RTCPeerConnection's `connectionState`, as a host shows it to its clients. */
    get connectionState(): RTCPeerConnectionState;
    /** The offering side starts negotiating. */
    start(): void;
    /**
     * A signal from the remote peer (its send_to_peer data), in the order it was sent.
     * @param {Record<string, unknown>} data
     */
    handleSignal(data: Record<string, unknown>): void;
    /**
     * Send one message over the DataChannel, as JSON.
     * @param {unknown} message
     * @returns {boolean} false when the channel is not open or too far behind
     */
    send(message: unknown): boolean;
    /**
     * Send `stream` instead of what was sent so far (a camera, a screen, or null).
     * @param {MediaStream | null} stream
     */
    setStream(stream: MediaStream | null): void;
    /** Close the link for good. */
    close(): void;
    #private;
}
/**
 * DataChannel heartbeats (the p2p_streams_channel gem's)
 */
export type Heartbeat = {
    /**
     * how often each side sends one
     */
    intervalMs: number;
    /**
     * silence after which the link counts as lost
     */
    idleTimeoutMs: number;
};
/**
 * data for send_to_peer
 */
export type Signal = {
    event: string;
} & Record<string, unknown>;
export type LinkOptions = {
    /**
     * the remote peer
     */
    peerId: string;
    /**
     * whether this side makes the offers
     */
    offerer: boolean;
    iceServers: RTCIceServer[];
    /**
     * what this side sends
     */
    stream: MediaStream | null;
    heartbeat: Heartbeat | null;
    /**
     * sends data to the remote peer (send_to_peer)
     */
    signal: (data: Signal) => boolean;
    /**
     * whether signals can reach the remote peer now
     */
    reachable: () => boolean;
};
export type LinkState = "new" | "negotiating" | "connecting" | "connected" | "disconnected" | "closed";
