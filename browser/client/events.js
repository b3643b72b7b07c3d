/**
 * The one way the library fires its events: a `CustomEvent` with its data in `detail`.
 * @module
 */

/**
 * @param {EventTarget} target
 * @param {string} type
 * @param {unknown} [detail]
 */
export const emit = (target, type, detail) => {
  target.dispatchEvent(new CustomEvent(type, { detail }));
};
