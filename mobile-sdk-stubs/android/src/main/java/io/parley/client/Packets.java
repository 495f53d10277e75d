package io.parley.client;

import org.json.JSONException;
import org.json.JSONTokener;

/**
 * Engine.IO v4 / Socket.IO v5 text packet codec (no binary attachments).
 *
 * <p>An Engine.IO text frame is one type digit followed by a payload:
 * {@code 0} open, {@code 1} close, {@code 2} ping, {@code 3} pong,
 * {@code 4} message, {@code 5} upgrade, {@code 6} noop. A Socket.IO packet is
 * carried inside an Engine.IO message ({@code 4}) and reads
 * {@code <type>[<nsp>,][<ack id>][<json>]}, for example
 * {@code 42/client,12["message",{...}]}.
 */
final class Packets {
    // Engine.IO packet types
    static final char EIO_OPEN = '0';
    static final char EIO_CLOSE = '1';
    static final char EIO_PING = '2';
    static final char EIO_PONG = '3';
    static final char EIO_MESSAGE = '4';
    static final char EIO_UPGRADE = '5';
    static final char EIO_NOOP = '6';

    // Socket.IO packet types
    static final int CONNECT = 0;
    static final int DISCONNECT = 1;
    static final int EVENT = 2;
    static final int ACK = 3;
    static final int CONNECT_ERROR = 4;
    static final int BINARY_EVENT = 5;
    static final int BINARY_ACK = 6;

    private Packets() {}

    /** A decoded Socket.IO packet. {@code data} is a JSONObject, JSONArray, String, Number, Boolean or null. */
    static final class Packet {
        final int type;
        final String nsp;
        final Integer id;
        final Object data;

        Packet(int type, String nsp, Integer id, Object data) {
            this.type = type;
            this.nsp = nsp;
            this.id = id;
            this.data = data;
        }

        @Override
        public String toString() {
            return "Packet{type=" + type + ", nsp=" + nsp + ", id=" + id + ", data=" + data + "}";
        }
    }

    /**
     * Encodes a Socket.IO packet as a complete Engine.IO text frame (leading {@code 4}).
     * {@code data} is any org.json value (JSONObject/JSONArray) or null.
     */
    static String encode(int type, String nsp, Integer id, Object data) {
        StringBuilder sb = new StringBuilder();
        sb.append(EIO_MESSAGE).append(type);
        if (nsp != null && !nsp.equals("/")) {
            sb.append(nsp).append(',');
        }
        if (id != null) {
            sb.append(id.intValue());
        }
        if (data != null) {
            sb.append(data.toString());
        }
        return sb.toString();
    }

    /** Decodes a Socket.IO packet: the payload of an Engine.IO message frame (without its leading {@code 4}). */
    static Packet decode(String s) throws JSONException {
        if (s == null || s.isEmpty()) {
            throw new JSONException("empty Socket.IO packet");
        }
        int type = s.charAt(0) - '0';
        if (type < CONNECT || type > BINARY_ACK) {
            throw new JSONException("unknown Socket.IO packet type in: " + s);
        }
        int i = 1;
        int n = s.length();
        if (type == BINARY_EVENT || type == BINARY_ACK) {
            // "<count>-" attachment counter; binary payloads are not supported by these stubs.
            int dash = s.indexOf('-', i);
            if (dash < 0) {
                throw new JSONException("binary packet without attachment count: " + s);
            }
            i = dash + 1;
        }
        String nsp = "/";
        if (i < n && s.charAt(i) == '/') {
            int comma = s.indexOf(',', i);
            int end = comma < 0 ? n : comma;
            nsp = s.substring(i, end);
            int q = nsp.indexOf('?');
            if (q >= 0) {
                nsp = nsp.substring(0, q);
            }
            i = comma < 0 ? n : comma + 1;
        }
        Integer id = null;
        int idStart = i;
        while (i < n && Character.isDigit(s.charAt(i))) {
            i++;
        }
        if (i > idStart) {
            id = Integer.valueOf(s.substring(idStart, i));
        }
        Object data = null;
        if (i < n) {
            data = new JSONTokener(s.substring(i)).nextValue();
        }
        return new Packet(type, nsp, id, data);
    }
}
