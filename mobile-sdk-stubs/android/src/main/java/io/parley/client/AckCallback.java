package io.parley.client;

import org.json.JSONObject;

/**
 * Receives the acknowledgement of an emit. Always an object of the shape
 * {@code {"ok": true, ...}} or {@code {"ok": false, "error": {"code", "message"}}}.
 * Client-side failures use the codes {@code timeout}, {@code disconnected} and {@code closed}.
 */
public interface AckCallback {
    void onAck(JSONObject ack);
}
