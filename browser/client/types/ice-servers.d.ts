export function iceServersFor(joined: IceFields, configured: RTCIceServer[]): RTCIceServer[];
/**
 * the ICE fields of a `joined_room` frame
 */
export type IceFields = {
    /**
     * ready for `new RTCPeerConnection`
     */
    ice_servers?: RTCIceServer[] | undefined;
    /**
     * time-limited TURN credentials (coturn's use-auth-secret)
     */
    turn_user?: string | undefined;
    turn_password?: string | undefined;
};
