/**
 * Where a page finds its gateway when it is not told.
 * @module
 */

/**
 * The WebSocket address of the host this page came from: `wss://HOST/` on an https page,
 * `ws://HOST/` otherwise. Every gateway serves both the pages and the socket, so this
 * reaches whichever replica served the page.
 * @returns {string}
 */
export const gatewayUrl = () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
