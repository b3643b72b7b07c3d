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
  #nextMs;

  /**
   * @param {number} [firstMs]
   * @param {number} [maxMs]
   */
  constructor(firstMs = 500, maxMs = 10000) {
    this.firstMs = firstMs;
    this.maxMs = maxMs;
    this.#nextMs = firstMs;
  }

  /** The delay before the next attempt, in ms; the one after is twice as long. */
  next() {
    const delay = this.#nextMs * (0.8 + 0.4 * Math.random());
    this.#nextMs = Math.min(this.#nextMs * 2, this.maxMs);
    return delay;
  }

  /** Start again from `firstMs` (the service was reached). */
  reset() {
    this.#nextMs = this.firstMs;
  }
}
