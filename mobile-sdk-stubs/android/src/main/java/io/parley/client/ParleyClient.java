package io.parley.client;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;
import okhttp3.WebSocket;
import okhttp3.WebSocketListener;
import okio.ByteString;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * Client of Parley's {@code /client} Socket.IO namespace over a plain OkHttp WebSocket
 * (Engine.IO v4 / Socket.IO v5 text protocol, websocket transport only, no polling).
 *
 * <pre>{@code
 * ParleyClient.Options o = new ParleyClient.Options("https://chat.example.com", "wk_...");
 * o.user = new ParleyClient.User("user-42", "Ada", "ada@example.com", hmacFromYourBackend);
 * ParleyClient c = new ParleyClient(o, new ParleyListener() {
 *     public void onMessage(String conversationId, JSONObject message) { ... }
 * });
 * c.connect();
 * c.send(null, ParleyClient.newClientMessageId(), ParleyClient.text("hi"), ack -> { ... });
 * }</pre>
 *
 * <p>All state lives on one background thread; public methods may be called from any thread.
 * The client keeps the {@code session} token for reconnects, tracks the last {@code seq} seen per
 * conversation, fills gaps with {@code resync} (also after every reconnect), reconnects with
 * exponential backoff and resends unacknowledged messages (same {@code client_message_id},
 * so the server deduplicates them).
 */
public final class ParleyClient {
    public static final String NAMESPACE = "/client";
    private static final Logger LOG = Logger.getLogger("io.parley.client");

    /** The {@code user} auth object: {@code hmac} = hex(HMAC-SHA256(identity_secret, external_id)), computed by your backend. */
    public static final class User {
        public final String externalId;
        public final String name;
        public final String email;
        public final String hmac;

        public User(String externalId, String name, String email, String hmac) {
            this.externalId = externalId;
            this.name = name;
            this.email = email;
            this.hmac = hmac;
        }

        JSONObject toJson() throws JSONException {
            JSONObject o = new JSONObject();
            o.put("external_id", externalId);
            if (name != null) o.put("name", name);
            if (email != null) o.put("email", email);
            if (hmac != null) o.put("hmac", hmac);
            return o;
        }
    }

    /** Connection options. Only {@code url} and {@code widgetKey} are required. */
    public static final class Options {
        /** Server base URL: http(s):// or ws(s)://host[:port][/prefix]. */
        public final String url;
        public final String widgetKey;
        /** Identified user (HMAC scheme); or use {@link #userToken}. */
        public User user;
        /** HS256 JWT signed with the identity secret, {@code sub} = external id. */
        public String userToken;
        /** Session token from an earlier {@code session} event (persist it to resume an anonymous visitor). */
        public String session;
        public String path = "/socket.io/";
        public long ackTimeoutMillis = 30_000;
        public long connectTimeoutMillis = 20_000;
        public boolean reconnect = true;
        public long reconnectDelayMillis = 1_000;
        public long reconnectDelayMaxMillis = 30_000;
        public double randomizationFactor = 0.5;
        /** Share your app's OkHttpClient if you have one. */
        public OkHttpClient httpClient;
        /** Where listener and ack callbacks run; default: the client's own thread (do not block it). */
        public Executor callbackExecutor;

        public Options(String url, String widgetKey) {
            this.url = url;
            this.widgetKey = widgetKey;
        }
    }

    /** One emit waiting to be sent or acknowledged. */
    private static final class Pending {
        final String event;
        final JSONObject data;
        final AckCallback cb;      // runs on the client thread; null = no ack requested
        final boolean retry;       // resend after a reconnect if unacknowledged
        final boolean volatileEmit; // dropped instead of queued while offline
        Integer ackId;
        ScheduledFuture<?> timer;
        boolean done;

        Pending(String event, JSONObject data, AckCallback cb, boolean retry, boolean volatileEmit) {
            this.event = event;
            this.data = data;
            this.cb = cb;
            this.retry = retry;
            this.volatileEmit = volatileEmit;
        }
    }

    private final Options options;
    private final ParleyListener listener;
    private final OkHttpClient http;
    private final boolean ownHttp;
    private final Executor callbacks;
    private final ScheduledThreadPoolExecutor loop;
    private final Random random = new Random();

    // --- state below is touched only on the loop thread, except the volatile/concurrent fields ---
    private WebSocket ws;
    private int generation;
    private volatile boolean nsConnected;
    private boolean everConnected;
    private boolean userStopped = true;
    private boolean closed;
    private boolean sentSessionToken;
    private int attempt;
    private int nextAckId;
    private ScheduledFuture<?> watchdog;
    private ScheduledFuture<?> reconnectTask;
    private long pingInterval = 25_000;
    private long pingTimeout = 20_000;
    private final List<Packets.Packet> inboundBuffer = new ArrayList<>();
    private final List<Pending> outbox = new ArrayList<>();
    private final Map<Integer, Pending> pendingAcks = new LinkedHashMap<>();
    private final Map<String, Boolean> resyncInFlight = new HashMap<>(); // value: run again when done
    private final Map<String, Long> lastSeq = new ConcurrentHashMap<>();
    private volatile String sessionToken;
    private volatile String contactId;

    public ParleyClient(Options options, ParleyListener listener) {
        if (options == null || options.url == null || options.widgetKey == null) {
            throw new IllegalArgumentException("url and widgetKey are required");
        }
        this.options = options;
        this.listener = listener != null ? listener : new ParleyListener() {};
        this.ownHttp = options.httpClient == null;
        this.http = ownHttp ? new OkHttpClient.Builder().build() : options.httpClient;
        this.sessionToken = options.session;
        this.loop = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "parley-client");
            t.setDaemon(true);
            return t;
        });
        this.loop.setRemoveOnCancelPolicy(true);
        this.loop.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        this.callbacks = options.callbackExecutor != null ? options.callbackExecutor : Runnable::run;
    }

    // ------------------------------------------------------------------ public API

    /** A fresh idempotency key for {@link #send}. */
    public static String newClientMessageId() {
        return UUID.randomUUID().toString();
    }

    /** {@code {"type": "text", "text": text}} */
    public static JSONObject text(String text) {
        try {
            return new JSONObject().put("type", "text").put("text", text);
        } catch (JSONException e) {
            throw new IllegalArgumentException(e);
        }
    }

    /** Opens the connection (again, after {@link #disconnect()}). */
    public void connect() {
        post(() -> {
            if (closed) return;
            userStopped = false;
            cancel(reconnectTask);
            reconnectTask = null;
            if (ws == null) {
                attempt = 0;
                openSocket();
            }
        });
    }

    /**
     * Closes the connection but keeps the session token, per-conversation seqs and unsent
     * messages; a later {@link #connect()} resumes and resyncs. Use it when the app goes to background.
     */
    public void disconnect() {
        post(() -> {
            userStopped = true;
            cancel(reconnectTask);
            reconnectTask = null;
            if (ws != null) {
                if (nsConnected) ws.send(Packets.encode(Packets.DISCONNECT, NAMESPACE, null, null));
                ws.close(1000, "client disconnect");
                transportLost("io client disconnect");
            }
        });
    }

    /** Disconnects for good and releases threads; pending acks fail with {@code closed}. */
    public void close() {
        post(() -> {
            if (closed) return;
            userStopped = true;
            cancel(reconnectTask);
            if (ws != null) {
                if (nsConnected) ws.send(Packets.encode(Packets.DISCONNECT, NAMESPACE, null, null));
                ws.close(1000, "client close");
                transportLost("io client disconnect");
            }
            closed = true;
            for (Pending p : new ArrayList<>(outbox)) fail(p, "closed", "client closed");
            outbox.clear();
            if (ownHttp) {
                http.dispatcher().executorService().shutdown();
                http.connectionPool().evictAll();
            }
            loop.shutdown();
        });
    }

    /**
     * Emits {@code message} {@code {"conversation_id"?, "client_message_id", "content"}}.
     * {@code conversationId} null opens a new conversation. The ack is
     * {@code {"ok": true, "message": {..., "seq"}}} or {@code {"ok": false, "error": {...}}}.
     */
    public void send(String conversationId, String clientMessageId, JSONObject content, AckCallback ack) {
        final JSONObject data = new JSONObject();
        try {
            if (conversationId != null) data.put("conversation_id", conversationId);
            data.put("client_message_id", clientMessageId);
            data.put("content", content);
        } catch (JSONException e) {
            throw new IllegalArgumentException(e);
        }
        final AckCallback user = toUser(ack);
        post(() -> emit(new Pending("message", data, a -> {
            JSONObject m = a.optJSONObject("message");
            if (a.optBoolean("ok") && m != null) {
                String conv = str(m, "conversation_id");
                if (conv == null) conv = str(a, "conversation_id");
                observeOwn(conv != null ? conv : conversationId, m);
            }
            user.onAck(a);
        }, true, false)), user);
    }

    /** Emits {@code typing} {@code {"conversation_id", "typing"}} (dropped while offline). */
    public void typing(String conversationId, boolean typing) {
        JSONObject data = obj("conversation_id", conversationId, "typing", typing);
        post(() -> emit(new Pending("typing", data, null, false, true)));
    }

    /** Emits {@code read} {@code {"conversation_id", "seq"}}: everything up to {@code seq} was read. */
    public void read(String conversationId, long seq) {
        JSONObject data = obj("conversation_id", conversationId, "seq", seq);
        post(() -> emit(new Pending("read", data, null, false, false)));
    }

    /**
     * Emits {@code resync} {@code {"conversation_id", "after_seq"}}; the ack is
     * {@code {"ok": true, "messages": [...]}} in seq order (a bare list is accepted too).
     */
    public void resync(String conversationId, long afterSeq, AckCallback ack) {
        JSONObject data = obj("conversation_id", conversationId, "after_seq", afterSeq);
        final AckCallback user = toUser(ack);
        post(() -> emit(new Pending("resync", data, a -> {
            JSONArray msgs = a.optJSONArray("messages");
            Long last = lastSeq.get(conversationId);
            if (a.optBoolean("ok") && msgs != null && (last == null || afterSeq <= last)) {
                long max = last == null ? -1 : last;
                for (int i = 0; i < msgs.length(); i++) {
                    JSONObject m = msgs.optJSONObject(i);
                    if (m != null) max = Math.max(max, m.optLong("seq", -1));
                }
                if (max >= 0) lastSeq.put(conversationId, max);
            }
            user.onAck(a);
        }, false, false)), user);
    }

    /** Emits {@code register_push} {@code {"channel_type": "fcm"|"apns"|"wns", "token"}}; ack {@code {"ok": true, ...}}. */
    public void registerPush(String channelType, String token, AckCallback ack) {
        JSONObject data = obj("channel_type", channelType, "token", token);
        final AckCallback user = toUser(ack);
        post(() -> emit(new Pending("register_push", data, user::onAck, false, false)), user);
    }

    public boolean isConnected() {
        return nsConnected;
    }

    /** The session token of the last {@code session} event (persist it to resume later). */
    public String getSessionToken() {
        return sessionToken;
    }

    public String getContactId() {
        return contactId;
    }

    /** Highest contiguous seq seen in a conversation, or -1. */
    public long getLastSeq(String conversationId) {
        Long v = lastSeq.get(conversationId);
        return v == null ? -1 : v;
    }

    /** Test hook: drops the transport as a network loss would, so the reconnect path runs. */
    void simulateConnectionLoss() {
        post(() -> {
            if (ws != null) {
                ws.cancel();
                transportLost("transport error (simulated)");
            }
        });
    }

    // ------------------------------------------------------------------ transport

    private void post(Runnable r) {
        post(r, null);
    }

    /** Runs {@code r} on the client thread; after {@link #close()} fails {@code ack} with {@code closed} instead. */
    private void post(Runnable r, AckCallback ack) {
        try {
            loop.execute(() -> {
                try {
                    r.run();
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "parley client task failed", e);
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            if (ack != null) ack.onAck(error("closed", "client closed"));
        }
    }

    private String socketUrl() {
        String base = options.url;
        if (base.startsWith("http://")) base = "ws://" + base.substring(7);
        else if (base.startsWith("https://")) base = "wss://" + base.substring(8);
        while (base.endsWith("/")) base = base.substring(0, base.length() - 1);
        String path = options.path.startsWith("/") ? options.path : "/" + options.path;
        return base + path + "?EIO=4&transport=websocket";
    }

    private void openSocket() {
        final int gen = ++generation;
        Request request = new Request.Builder().url(socketUrl()).build();
        armWatchdog(options.connectTimeoutMillis, "connect timeout");
        ws = http.newWebSocket(request, new WebSocketListener() {
            @Override
            public void onMessage(WebSocket webSocket, String text) {
                post(() -> { if (gen == generation) onFrame(text); });
            }

            @Override
            public void onMessage(WebSocket webSocket, ByteString bytes) {
                // binary attachments are not used by the /client namespace
            }

            @Override
            public void onClosing(WebSocket webSocket, int code, String reason) {
                webSocket.close(1000, null);
                post(() -> { if (gen == generation) transportLost("transport close"); });
            }

            @Override
            public void onClosed(WebSocket webSocket, int code, String reason) {
                post(() -> { if (gen == generation) transportLost("transport close"); });
            }

            @Override
            public void onFailure(WebSocket webSocket, Throwable t, Response response) {
                String why = "transport error: " + t + (response != null ? " (HTTP " + response.code() + ")" : "");
                post(() -> { if (gen == generation) transportLost(why); });
            }
        });
    }

    private void onFrame(String text) {
        if (text.isEmpty()) return;
        try {
            switch (text.charAt(0)) {
                case Packets.EIO_OPEN: {
                    JSONObject open = new JSONObject(text.substring(1));
                    pingInterval = open.optLong("pingInterval", pingInterval);
                    pingTimeout = open.optLong("pingTimeout", pingTimeout);
                    armWatchdog(pingInterval + pingTimeout, "ping timeout");
                    sentSessionToken = sessionToken != null;
                    ws.send(Packets.encode(Packets.CONNECT, NAMESPACE, null, authPayload()));
                    break;
                }
                case Packets.EIO_PING:
                    ws.send(Packets.EIO_PONG + text.substring(1));
                    armWatchdog(pingInterval + pingTimeout, "ping timeout");
                    break;
                case Packets.EIO_CLOSE:
                    ws.close(1000, null);
                    transportLost("io server close");
                    break;
                case Packets.EIO_MESSAGE:
                    onPacket(Packets.decode(text.substring(1)));
                    break;
                default: // pong, upgrade, noop
                    break;
            }
        } catch (JSONException e) {
            LOG.log(Level.WARNING, "malformed frame ignored: " + text, e);
        }
    }

    private JSONObject authPayload() throws JSONException {
        JSONObject auth = new JSONObject();
        auth.put("widget_key", options.widgetKey);
        if (sessionToken != null) auth.put("session", sessionToken);
        if (options.user != null) auth.put("user", options.user.toJson());
        if (options.userToken != null) auth.put("user_token", options.userToken);
        return auth;
    }

    private void onPacket(Packets.Packet p) {
        if (!NAMESPACE.equals(p.nsp)) return;
        switch (p.type) {
            case Packets.CONNECT: {
                nsConnected = true;
                final boolean again = everConnected;
                everConnected = true;
                attempt = 0;
                notifyListener(() -> listener.onConnected(again));
                // Events the server sent before its CONNECT answer (e.g. "session" emitted from the
                // connect handler) were buffered, as socket.io-client does.
                List<Packets.Packet> buffered = new ArrayList<>(inboundBuffer);
                inboundBuffer.clear();
                for (Packets.Packet b : buffered) onEvent(b);
                for (String conv : new ArrayList<>(lastSeq.keySet())) requestResync(conv);
                List<Pending> queued = new ArrayList<>(outbox);
                outbox.clear();
                for (Pending q : queued) transmit(q);
                break;
            }
            case Packets.CONNECT_ERROR: {
                String msg = p.data instanceof JSONObject
                        ? ((JSONObject) p.data).optString("message", String.valueOf(p.data))
                        : String.valueOf(p.data);
                boolean retryWithoutSession = sentSessionToken;
                if (retryWithoutSession) {
                    sessionToken = null; // the stored session was refused: try once as a new session
                } else {
                    userStopped = true;   // bad widget key / hmac / token: retrying will not help
                }
                final boolean fatal = !retryWithoutSession;
                notifyListener(() -> listener.onConnectError(msg, fatal));
                ws.close(1000, null);
                if (fatal) {
                    for (Pending q : new ArrayList<>(outbox)) fail(q, "connect_error", msg);
                    outbox.clear();
                }
                transportLost("connect error: " + msg);
                break;
            }
            case Packets.DISCONNECT:
                userStopped = true; // kicked by the server: like socket.io-client, do not reconnect
                ws.close(1000, null);
                transportLost("io server disconnect");
                break;
            case Packets.EVENT:
                if (!nsConnected) inboundBuffer.add(p);
                else onEvent(p);
                break;
            case Packets.ACK: {
                Pending pending = pendingAcks.remove(p.id);
                if (pending != null) complete(pending, normalizeAck(p.data));
                break;
            }
            default: // binary packets are not part of this protocol
                break;
        }
    }

    private static JSONObject normalizeAck(Object data) {
        Object first = data instanceof JSONArray ? ((JSONArray) data).opt(0) : null;
        if (first instanceof JSONObject) return (JSONObject) first;
        if (first instanceof JSONArray) return obj("ok", true, "messages", first);
        return error("bad_ack", "unexpected ack payload: " + data);
    }

    private void onEvent(Packets.Packet p) {
        if (!(p.data instanceof JSONArray)) return;
        JSONArray arr = (JSONArray) p.data;
        String name = arr.optString(0);
        Object arg = arr.length() > 1 ? arr.opt(1) : null;
        if (p.id != null) { // the server asked for an ack: answer with an empty one
            ws.send(Packets.encode(Packets.ACK, NAMESPACE, p.id, new JSONArray()));
        }
        final JSONObject d = arg instanceof JSONObject ? (JSONObject) arg : null;
        if (d == null) {
            notifyListener(() -> listener.onEvent(name, arg));
            return;
        }
        switch (name) {
            case "session":
                if (str(d, "session") != null) sessionToken = str(d, "session");
                if (str(d, "contact_id") != null) contactId = str(d, "contact_id");
                notifyListener(() -> listener.onSession(d));
                break;
            case "message": {
                JSONObject m = d.optJSONObject("message");
                if (m == null) break;
                String conv = str(d, "conversation_id");
                if (conv == null) conv = str(m, "conversation_id");
                observeIncoming(conv != null ? conv : "", m);
                break;
            }
            case "message.status":
                notifyListener(() -> listener.onMessageStatus(d));
                break;
            case "typing":
                notifyListener(() -> listener.onTyping(d));
                break;
            case "read":
                notifyListener(() -> listener.onRead(d));
                break;
            case "conversation.updated":
                notifyListener(() -> listener.onConversationUpdated(d));
                break;
            default:
                notifyListener(() -> listener.onEvent(name, d));
        }
    }

    private void transportLost(String reason) {
        if (ws == null) return;
        generation++; // late callbacks of the old socket are ignored
        ws = null;
        cancel(watchdog);
        watchdog = null;
        nsConnected = false;
        inboundBuffer.clear();
        resyncInFlight.clear();
        // Unacknowledged emits: messages are resent after the reconnect (same client_message_id);
        // anything else fails, since we cannot know whether the server saw it.
        List<Pending> requeue = new ArrayList<>();
        for (Pending p : pendingAcks.values()) {
            p.ackId = null;
            if (p.retry && !closed) requeue.add(p);
            else fail(p, "disconnected", reason);
        }
        pendingAcks.clear();
        outbox.addAll(0, requeue);
        final boolean willReconnect = options.reconnect && !userStopped && !closed;
        notifyListener(() -> listener.onDisconnected(reason, willReconnect));
        if (willReconnect) scheduleReconnect();
    }

    private void scheduleReconnect() {
        attempt++;
        double ms = options.reconnectDelayMillis * Math.pow(2, Math.min(attempt - 1, 16));
        ms = Math.min(ms, options.reconnectDelayMaxMillis);
        double f = options.randomizationFactor;
        ms = ms * (1 - f + 2 * f * random.nextDouble());
        final long delay = Math.max(0, Math.min((long) ms, options.reconnectDelayMaxMillis));
        final int n = attempt;
        notifyListener(() -> listener.onReconnecting(n, delay));
        cancel(reconnectTask);
        reconnectTask = loop.schedule(() -> post(() -> {
            reconnectTask = null;
            if (!userStopped && !closed && ws == null) openSocket();
        }), delay, TimeUnit.MILLISECONDS);
    }

    private void armWatchdog(long millis, String reason) {
        cancel(watchdog);
        final int gen = generation;
        watchdog = loop.schedule(() -> post(() -> {
            if (gen == generation && ws != null) {
                ws.cancel();
                transportLost(reason);
            }
        }), millis, TimeUnit.MILLISECONDS);
    }

    // ------------------------------------------------------------------ emits and acks

    private void emit(Pending p) {
        if (closed) {
            fail(p, "closed", "client closed");
            return;
        }
        if (p.cb != null) {
            p.timer = loop.schedule(() -> post(() -> {
                if (p.ackId != null) pendingAcks.remove(p.ackId);
                outbox.remove(p);
                complete(p, error("timeout", "no ack for '" + p.event + "' within " + options.ackTimeoutMillis + " ms"));
            }), options.ackTimeoutMillis, TimeUnit.MILLISECONDS);
        }
        if (nsConnected) transmit(p);
        else if (!p.volatileEmit) outbox.add(p);
    }

    private void transmit(Pending p) {
        Integer id = null;
        if (p.cb != null) {
            id = nextAckId++;
            p.ackId = id;
            pendingAcks.put(id, p);
        }
        JSONArray args = new JSONArray().put(p.event).put(p.data);
        ws.send(Packets.encode(Packets.EVENT, NAMESPACE, id, args));
    }

    private void complete(Pending p, JSONObject ack) {
        if (p.done) return;
        p.done = true;
        cancel(p.timer);
        if (p.cb != null) {
            try {
                p.cb.onAck(ack);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "ack callback failed", e);
            }
        }
    }

    private void fail(Pending p, String code, String message) {
        complete(p, error(code, message));
    }

    private AckCallback toUser(AckCallback cb) {
        if (cb == null) return a -> {};
        return a -> notifyListener(() -> cb.onAck(a));
    }

    private void notifyListener(Runnable r) {
        callbacks.execute(() -> {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "listener failed", e);
            }
        });
    }

    // ------------------------------------------------------------------ seq tracking

    private void deliver(String conv, JSONObject m) {
        notifyListener(() -> listener.onMessage(conv, m));
    }

    private void observeIncoming(String conv, JSONObject m) {
        long seq = m.optLong("seq", -1);
        if (seq < 0 || conv.isEmpty()) {
            deliver(conv, m);
            return;
        }
        Long last = lastSeq.get(conv);
        if (last == null || seq == last + 1) {
            lastSeq.put(conv, seq);
            deliver(conv, m);
        } else if (seq > last + 1) {
            requestResync(conv); // gap: fetch everything after `last`, this message included
        } // else: duplicate, already delivered
    }

    private void observeOwn(String conv, JSONObject m) {
        long seq = m.optLong("seq", -1);
        if (seq < 0 || conv == null || conv.isEmpty()) return;
        Long last = lastSeq.get(conv);
        if (last == null || seq == last + 1) lastSeq.put(conv, seq);
        else if (seq > last + 1) requestResync(conv);
    }

    private void requestResync(String conv) {
        if (resyncInFlight.containsKey(conv)) {
            resyncInFlight.put(conv, Boolean.TRUE);
            return;
        }
        resyncInFlight.put(conv, Boolean.FALSE);
        Long last = lastSeq.get(conv);
        JSONObject data = obj("conversation_id", conv, "after_seq", last == null ? 0L : last);
        emit(new Pending("resync", data, ack -> {
            Boolean again = resyncInFlight.remove(conv);
            JSONArray msgs = ack.optJSONArray("messages");
            if (!ack.optBoolean("ok") || msgs == null) {
                LOG.warning("resync of " + conv + " failed: " + ack);
                return;
            }
            List<JSONObject> sorted = new ArrayList<>();
            for (int i = 0; i < msgs.length(); i++) {
                JSONObject m = msgs.optJSONObject(i);
                if (m != null) sorted.add(m);
            }
            Collections.sort(sorted, Comparator.comparingLong(m -> m.optLong("seq", -1)));
            for (JSONObject m : sorted) {
                long seq = m.optLong("seq", -1);
                Long cur = lastSeq.get(conv);
                if (seq >= 0 && (cur == null || seq > cur)) {
                    lastSeq.put(conv, seq);
                    deliver(conv, m);
                }
            }
            if (Boolean.TRUE.equals(again)) requestResync(conv);
        }, false, false));
    }

    // ------------------------------------------------------------------ helpers

    private static void cancel(ScheduledFuture<?> f) {
        if (f != null) f.cancel(false);
    }

    /** The string value of {@code key}, or null when it is missing or JSON null. */
    static String str(JSONObject o, String key) {
        Object v = o.opt(key);
        return v == null || v == JSONObject.NULL ? null : v.toString();
    }

    static JSONObject obj(Object... kv) {
        JSONObject o = new JSONObject();
        try {
            for (int i = 0; i + 1 < kv.length; i += 2) o.put((String) kv[i], kv[i + 1]);
        } catch (JSONException e) {
            throw new IllegalArgumentException(e);
        }
        return o;
    }

    static JSONObject error(String code, String message) {
        return obj("ok", false, "error", obj("code", code, "message", message));
    }
}
