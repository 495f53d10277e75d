package io.parley.client;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.json.JSONArray;
import org.json.JSONObject;

/**
 * End-to-end check of {@link ParleyClient} against a live Parley server. Prints one JSON line per
 * step ({@code {"step": ..., "ok": true|false, ...}}) and exits 0 on success, 1 on failure, 2 on
 * bad arguments.
 *
 * <pre>
 * java -cp build/classes:JARS io.parley.client.Check --url http://127.0.0.1:8000 \
 *      --widget-key WK --external-id user-1 --hmac HEX [--name N] [--email E] [--user-token JWT]
 *      [--timeout 20] [--expect-text "hello from agent"] [--no-wait-incoming]
 *      [--reconnect-check [--offline-text "sent while offline"]]
 * </pre>
 *
 * With {@code --reconnect-check} the program, after the incoming message, disconnects, prints
 * {@code {"step": "offline"}} and waits for one line on stdin (post a message in the meantime);
 * then it reconnects, expects the message with {@code --offline-text} to be recovered by the
 * automatic resync, then drops the transport abruptly and expects an automatic reconnect.
 */
public final class Check {

    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        final String step;

        Failure(String step, String message) {
            super(message);
            this.step = step;
        }
    }

    private final Map<String, String> args;
    private final long timeoutMs;
    private final BlockingQueue<JSONObject> sessions = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> connectErrors = new LinkedBlockingQueue<>();
    private final BlockingQueue<String> disconnects = new LinkedBlockingQueue<>();
    private final BlockingQueue<Integer> reconnects = new LinkedBlockingQueue<>();
    private final BlockingQueue<JSONObject> incoming = new LinkedBlockingQueue<>();
    private final Set<String> ownClientIds = new HashSet<>();
    /** Connection history, quoted in failure messages. */
    private final List<String> history = java.util.Collections.synchronizedList(new ArrayList<>());
    private ParleyClient client;

    private Check(Map<String, String> args) {
        this.args = args;
        this.timeoutMs = (long) (Double.parseDouble(args.getOrDefault("timeout", "20")) * 1000);
    }

    public static void main(String[] argv) {
        Map<String, String> args = parseArgs(argv);
        for (String required : new String[] {"url", "widget-key"}) {
            if (!args.containsKey(required)) {
                System.err.println("missing --" + required);
                System.err.println("usage: Check --url URL --widget-key WK [--external-id ID --hmac HEX] [--user-token JWT]"
                        + " [--name N] [--email E] [--timeout S] [--expect-text T] [--no-wait-incoming]"
                        + " [--reconnect-check] [--offline-text T]");
                System.exit(2);
            }
        }
        Check check = new Check(args);
        int code = 0;
        try {
            check.run();
            emit("done", "elapsed_ms", System.currentTimeMillis() - START);
        } catch (Failure f) {
            JSONObject o = ParleyClient.obj("step", f.step, "ok", false, "error", f.getMessage());
            System.out.println(o);
            code = 1;
        } catch (Exception e) {
            JSONObject o = ParleyClient.obj("step", "crash", "ok", false, "error", e.toString());
            System.out.println(o);
            code = 1;
        } finally {
            System.out.flush();
            if (check.client != null) check.client.close();
        }
        System.exit(code);
    }

    private static final long START = System.currentTimeMillis();

    private static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) continue;
            String key = a.substring(2);
            int eq = key.indexOf('=');
            if (eq >= 0) {
                m.put(key.substring(0, eq), key.substring(eq + 1));
            } else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) {
                m.put(key, argv[++i]);
            } else {
                m.put(key, "true");
            }
        }
        return m;
    }

    private static void emit(String step, Object... kv) {
        JSONObject o = ParleyClient.obj("step", step, "ok", true);
        try {
            for (int i = 0; i + 1 < kv.length; i += 2) o.put((String) kv[i], kv[i + 1] == null ? JSONObject.NULL : kv[i + 1]);
        } catch (org.json.JSONException e) {
            throw new IllegalArgumentException(e);
        }
        System.out.println(o);
        System.out.flush();
    }

    private void run() throws Exception {
        ParleyClient.Options o = new ParleyClient.Options(args.get("url"), args.get("widget-key"));
        if (args.containsKey("external-id")) {
            o.user = new ParleyClient.User(args.get("external-id"), args.get("name"), args.get("email"), args.get("hmac"));
        }
        o.userToken = args.get("user-token");
        o.ackTimeoutMillis = timeoutMs;
        o.reconnectDelayMillis = 300;
        o.reconnectDelayMaxMillis = 2_000;
        client = new ParleyClient(o, new ParleyListener() {
            @Override public void onConnected(boolean reconnect) { history.add("connected"); }
            @Override public void onSession(JSONObject s) { history.add("session"); sessions.add(s); }
            @Override public void onConnectError(String message, boolean fatal) {
                history.add("connect_error: " + message);
                if (fatal) connectErrors.add(message);
            }
            @Override public void onDisconnected(String reason, boolean willReconnect) {
                history.add("disconnected: " + reason);
                disconnects.add(reason);
            }
            @Override public void onReconnecting(int attempt, long delay) { reconnects.add(attempt); }
            @Override public void onMessage(String conversationId, JSONObject message) {
                incoming.add(ParleyClient.obj("conversation_id", conversationId, "message", message));
            }
        });

        // 1. connect and wait for the session event
        client.connect();
        JSONObject session = awaitSession("session");
        String contactId = ParleyClient.str(session, "contact_id");
        if (contactId == null || contactId.isEmpty()) throw new Failure("session", "session event without contact_id: " + session);
        if (session.optString("session", "").isEmpty()) throw new Failure("session", "session event without session token: " + session);
        if (session.optJSONArray("conversations") == null) throw new Failure("session", "session event without conversations list: " + session);
        emit("session", "contact_id", contactId, "conversations", session.optJSONArray("conversations").length(),
                "connected", client.isConnected());

        // 2. send without conversation id: the server opens a conversation
        String cmid1 = ParleyClient.newClientMessageId();
        ownClientIds.add(cmid1);
        JSONObject m1 = sendOk("send_new", null, cmid1, "hello from the android check (1)");
        String conv = ParleyClient.str(m1, "conversation_id");
        if (conv == null || conv.isEmpty()) throw new Failure("send_new", "ack message without conversation_id: " + m1);
        long seq1 = m1.getLong("seq");
        emit("send_new", "conversation_id", conv, "seq", seq1, "message_id", m1.opt("id"));

        // 3. second message into the same conversation
        String cmid2 = ParleyClient.newClientMessageId();
        ownClientIds.add(cmid2);
        JSONObject m2 = sendOk("send_existing", conv, cmid2, "hello from the android check (2)");
        long seq2 = m2.getLong("seq");
        if (ParleyClient.str(m2, "conversation_id") != null && !conv.equals(ParleyClient.str(m2, "conversation_id"))) {
            throw new Failure("send_existing", "message landed in another conversation: " + m2);
        }
        if (seq2 <= seq1) throw new Failure("send_existing", "seq did not increase: " + seq1 + " then " + seq2);
        emit("send_existing", "conversation_id", conv, "seq", seq2);

        // 4. typing and read (no ack in the contract)
        client.typing(conv, true);
        client.typing(conv, false);
        emit("typing", "conversation_id", conv);
        client.read(conv, seq2);
        emit("read", "conversation_id", conv, "seq", seq2);

        // 5. resync from 0 returns both messages in seq order
        JSONObject rs = await("resync", cb -> client.resync(conv, 0, cb));
        JSONArray msgs = rs.optJSONArray("messages");
        if (msgs == null) throw new Failure("resync", "ack without messages: " + rs);
        List<Long> seqs = new ArrayList<>();
        int i1 = -1;
        int i2 = -1;
        for (int i = 0; i < msgs.length(); i++) {
            JSONObject m = msgs.getJSONObject(i);
            long s = m.getLong("seq");
            if (!seqs.isEmpty() && s <= seqs.get(seqs.size() - 1)) {
                throw new Failure("resync", "messages not in increasing seq order: " + seqs + " then " + s);
            }
            seqs.add(s);
            String cm = ParleyClient.str(m, "client_message_id");
            if (cm == null) cm = "";
            if (cmid1.equals(cm) || (cm.isEmpty() && s == seq1)) i1 = i;
            if (cmid2.equals(cm) || (cm.isEmpty() && s == seq2)) i2 = i;
        }
        if (i1 < 0 || i2 < 0) throw new Failure("resync", "sent messages missing from resync: " + msgs);
        if (i1 > i2) throw new Failure("resync", "messages out of order: " + msgs);
        emit("resync", "conversation_id", conv, "seqs", new JSONArray(seqs));

        // 6. push token
        JSONObject push = await("register_push", cb -> client.registerPush("fcm", "token-xyz", cb));
        emit("register_push", "ack", push);

        // 7. a message from someone else (the test posts an agent reply over REST)
        if (!args.containsKey("no-wait-incoming")) {
            emit("waiting_incoming", "conversation_id", conv, "expect_text", args.get("expect-text"));
            JSONObject m = awaitIncoming("incoming", conv, args.get("expect-text"));
            emit("incoming", "conversation_id", conv, "seq", m.opt("seq"), "text",
                    m.optJSONObject("content") != null ? m.optJSONObject("content").opt("text") : null, "message", m);
        }

        // 8. optional: resume after disconnect (auto resync), then automatic reconnect
        if (args.containsKey("reconnect-check")) {
            reconnectCheck(conv, contactId, seq2);
        }
    }

    private void reconnectCheck(String conv, String contactId, long seq2) throws Exception {
        disconnects.clear();
        client.disconnect();
        poll(disconnects, "offline", "no disconnect notification");
        sessions.clear();
        emit("offline", "conversation_id", conv, "last_seq", client.getLastSeq(conv));
        // wait for the driver (a test) to post a message, then to say "go" on stdin
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
            try {
                return in.readLine();
            } catch (java.io.IOException e) {
                return null;
            }
        });
        try {
            line.get(timeoutMs * 3, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new Failure("offline", "no go-ahead on stdin");
        }
        client.connect();
        JSONObject s = awaitSession("resumed");
        boolean same = contactId.equals(s.optString("contact_id"));
        if (!same) throw new Failure("resumed", "resumed as another contact: " + s.optString("contact_id") + " != " + contactId);
        emit("resumed", "contact_id", s.optString("contact_id"));
        String text = args.getOrDefault("offline-text", "sent while offline");
        JSONObject m = awaitIncoming("resynced_after_reconnect", conv, text);
        emit("resynced_after_reconnect", "conversation_id", conv, "seq", m.opt("seq"), "text", text);

        // abrupt transport loss -> automatic reconnect with backoff, same contact, seq continues
        disconnects.clear();
        reconnects.clear();
        client.simulateConnectionLoss();
        Integer attempt = poll(reconnects, "auto_reconnect", "no reconnect scheduled after transport loss");
        JSONObject s2 = awaitSession("auto_reconnect");
        if (!contactId.equals(s2.optString("contact_id"))) {
            throw new Failure("auto_reconnect", "reconnected as another contact: " + s2);
        }
        String cmid3 = ParleyClient.newClientMessageId();
        ownClientIds.add(cmid3);
        JSONObject m3 = sendOk("send_after_reconnect", conv, cmid3, "hello again after reconnect");
        if (m3.getLong("seq") <= seq2) throw new Failure("send_after_reconnect", "seq went backwards: " + m3);
        emit("auto_reconnect", "attempt", attempt, "contact_id", contactId, "seq", m3.getLong("seq"),
                "last_seq", client.getLastSeq(conv));
    }

    // ------------------------------------------------------------------ helpers

    private JSONObject sendOk(String step, String conv, String cmid, String text) throws Failure {
        JSONObject ack = await(step, cb -> client.send(conv, cmid, ParleyClient.text(text), cb));
        JSONObject m = ack.optJSONObject("message");
        if (m == null || !m.has("seq")) throw new Failure(step, "ack without message.seq: " + ack);
        String echoed = ParleyClient.str(m, "client_message_id");
        if (echoed != null && !cmid.equals(echoed)) {
            throw new Failure(step, "ack echoes another client_message_id: " + ack);
        }
        return m;
    }

    private JSONObject await(String step, Consumer<AckCallback> call) throws Failure {
        CompletableFuture<JSONObject> f = new CompletableFuture<>();
        call.accept(f::complete);
        JSONObject ack;
        try {
            ack = f.get(timeoutMs + 2_000, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new Failure(step, "no ack: " + e);
        }
        if (!ack.optBoolean("ok", false)) throw new Failure(step, "ack not ok: " + ack);
        return ack;
    }

    private JSONObject awaitSession(String step) throws Failure {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            String err = connectErrors.poll();
            if (err != null) throw new Failure(step, "connection refused: " + err);
            try {
                JSONObject s = sessions.poll(100, TimeUnit.MILLISECONDS);
                if (s != null) return s;
            } catch (InterruptedException e) {
                throw new Failure(step, "interrupted");
            }
        }
        throw new Failure(step, "no session event within " + timeoutMs + " ms; connection history: " + history);
    }

    /** A message in {@code conv} that this program did not send (and with {@code text}, if given). */
    private JSONObject awaitIncoming(String step, String conv, String text) throws Failure {
        long deadline = System.currentTimeMillis() + timeoutMs;
        List<JSONObject> ignored = new ArrayList<>();
        while (System.currentTimeMillis() < deadline) {
            JSONObject e;
            try {
                e = incoming.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException ex) {
                throw new Failure(step, "interrupted");
            }
            if (e == null) continue;
            JSONObject m = e.optJSONObject("message");
            if (!conv.equals(e.optString("conversation_id")) || m == null) {
                ignored.add(e);
                continue;
            }
            if (ownClientIds.contains(ParleyClient.str(m, "client_message_id"))) continue;
            JSONObject author = m.optJSONObject("author");
            if (author != null && "contact".equals(author.optString("type"))) continue;
            JSONObject content = m.optJSONObject("content");
            if (text != null && (content == null || !text.equals(content.optString("text")))) {
                ignored.add(e);
                continue;
            }
            return m;
        }
        throw new Failure(step, "no incoming message within " + timeoutMs + " ms; other events: " + ignored);
    }

    private <T> T poll(BlockingQueue<T> q, String step, String error) throws Failure {
        try {
            T v = q.poll(timeoutMs, TimeUnit.MILLISECONDS);
            if (v == null) throw new Failure(step, error);
            return v;
        } catch (InterruptedException e) {
            throw new Failure(step, "interrupted");
        }
    }
}
