/**
 * Delays between attempts to reach the service again, after losing it.
 * @module
 */
/**
 * Doubling delays, from `firstMs` up to `maxMs`, each varied by ±20% so that the pages a
 * gateway dropped do not all come back at the same moment.
 *
 *     const backoff = new Backoff();
 *     setTimeout(rejoin, backoff.next());   // 0.5 s, 1 s, 2 s... 10 s, 10 s...
 *     backoff.reset();                      // once joined again
 */
export class Backoff {
    /**
     * @param {number} [firstMs]
     * @param {number} [maxMs]
     */
    constructor(firstMs?: number, maxMs?: number);
    firstMs: number;
    maxMs: number;
    /** The delay before the next attempt, in ms; the one after is twice as long. */
    next(): number;
    /** Start again from `firstMs` (the service was reached). */
    reset(): void;
    #private;
}
