package io.parley.client;

import org.json.JSONObject;

/**
 * Receives connection state and server events of the {@code /client} namespace.
 * Every method has an empty default, so implement only what you need.
 * Callbacks run on {@link ParleyClient.Options#callbackExecutor} (by default the
 * client's own single background thread; on Android pass {@code mainHandler::post}).
 */
public interface ParleyListener {

    /** The namespace connection was accepted. {@code reconnect} is true after the first successful connect. */
    default void onConnected(boolean reconnect) {}

    /**
     * {@code session} event: {"session", "contact_id", "conversations": [...]}. The client has
     * already stored the session token and uses it for later reconnects.
     */
    default void onSession(JSONObject session) {}

    /**
     * {@code message} event {"conversation_id", "message"} (or a message recovered by resync).
     * Delivered in seq order per conversation, without duplicates; this includes echoes of the
     * contact's own messages (they carry the {@code client_message_id} you chose).
     */
    default void onMessage(String conversationId, JSONObject message) {}

    /** {@code message.status} event. */
    default void onMessageStatus(JSONObject data) {}

    /** {@code typing} event {"conversation_id", "typing", ...}. */
    default void onTyping(JSONObject data) {}

    /** {@code read} event {"conversation_id", "seq", ...}. */
    default void onRead(JSONObject data) {}

    /** {@code conversation.updated} event. */
    default void onConversationUpdated(JSONObject data) {}

    /** Any other server event (forward compatibility). {@code data} may be null. */
    default void onEvent(String event, Object data) {}

    /**
     * The server refused the namespace connection ({@code 44/client,{"message"}}).
     * {@code fatal} is true when the client gave up (bad widget key, bad hmac or token).
     */
    default void onConnectError(String message, boolean fatal) {}

    /** The connection was lost. {@code willReconnect} says whether a reconnect is scheduled. */
    default void onDisconnected(String reason, boolean willReconnect) {}

    /** A reconnect attempt is scheduled in {@code delayMillis}. */
    default void onReconnecting(int attempt, long delayMillis) {}
}
