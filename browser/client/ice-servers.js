/**
 * ICE servers for `RTCPeerConnection`, from what the server sent in `joined_room`
 * (docs/protocol.md, "TURN and ICE servers") and what the page configured.
 * @module
 */

/**
 * @typedef {object} IceFields  the ICE fields of a `joined_room` frame
 * @property {RTCIceServer[]} [ice_servers]  ready for `new RTCPeerConnection`
 * @property {string} [turn_user]  time-limited TURN credentials (coturn's use-auth-secret)
 * @property {string} [turn_password]
 */

/**
 * The server's `ice_servers` when it sent them; otherwise the configured servers, with the
 * server's TURN credentials given to every TURN entry that has none of its own.
 * @param {IceFields} joined
 * @param {RTCIceServer[]} configured
 * @returns {RTCIceServer[]}
 */
export const iceServersFor = (joined, configured) => {
  if (Array.isArray(joined.ice_servers) && joined.ice_servers.length > 0) {
    return joined.ice_servers;
  }
  const { turn_user: username, turn_password: credential } = joined;
  if (!username || !credential) {
    return configured;
  }
  return configured.map((server) => (isTurn(server) && !server.username
    ? { ...server, username, credential }
    : server));
};

/** @param {RTCIceServer} server */
const isTurn = (server) => [server.urls].flat().some((url) => /^turns?:/.test(url));
