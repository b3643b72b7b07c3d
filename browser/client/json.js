/**
 * The library's one guard on JSON from outside (server frames, DataChannel messages).
 * @module
 */

/**
 * The JSON object `text` holds, or null: for anything but a string, text that is not JSON,
 * and JSON that is not an object (an array, a number, null...).
 * @param {unknown} text
 * @returns {Record<string, any> | null}
 */
export const parseObject = (text) => {
  if (typeof text !== 'string') {
    return null;
  }
  try {
    const value = JSON.parse(text);
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
};

/**
 * Whether `value`, parsed already, is a JSON object (not an array, not null).
 * @param {unknown} value
 * @returns {value is Record<string, any>}
 */
export const isObject = (value) => value !== null && typeof value === 'object'
  && !Array.isArray(value);
