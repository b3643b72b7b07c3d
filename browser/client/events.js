/**
 * The one way the library fires its events, a `CustomEvent` with its data in `detail`, and
 * the one way its typed `on` listens to them.
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

/**
 * `listener` on `target` for `type`, until the function returned is called: what the
 * typed `on` of the library's classes does.
 * @param {EventTarget} target
 * @param {string} type
 * @param {(event: any) => void} listener
 * @returns {() => void}
 */
export const listen = (target, type, listener) => {
  target.addEventListener(type, listener);
  return () => target.removeEventListener(type, listener);
};
