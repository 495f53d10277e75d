package io.parley.client;

import org.json.JSONArray;
import org.json.JSONObject;

/** Offline test of the packet codec (no server needed). Prints "N passed, N failed"; exit 1 on failure. */
public final class ProtocolSelfTest {
    private static int passed;
    private static int failed;

    private static void check(String name, boolean ok, Object detail) {
        if (ok) {
            passed++;
        } else {
            failed++;
            System.out.println("FAIL " + name + ": " + detail);
        }
    }

    public static void main(String[] args) throws Exception {
        // encoding
        check("connect with auth",
                Packets.encode(Packets.CONNECT, "/client", null, new JSONObject().put("widget_key", "wk"))
                        .equals("40/client,{\"widget_key\":\"wk\"}"), null);
        String ev = Packets.encode(Packets.EVENT, "/client", 12, new JSONArray().put("message").put(new JSONObject().put("a", 1)));
        check("event with ack id", ev.equals("42/client,12[\"message\",{\"a\":1}]"), ev);
        check("event without ack id",
                Packets.encode(Packets.EVENT, "/client", null, new JSONArray().put("typing")).equals("42/client,[\"typing\"]"), null);
        check("disconnect", Packets.encode(Packets.DISCONNECT, "/client", null, null).equals("41/client,"), null);
        check("default namespace omitted", Packets.encode(Packets.EVENT, "/", 0, new JSONArray()).equals("420[]"), null);

        // decoding
        Packets.Packet p = Packets.decode("0/client,{\"sid\":\"abc\"}");
        check("connect ok", p.type == Packets.CONNECT && p.nsp.equals("/client") && p.id == null
                && ((JSONObject) p.data).getString("sid").equals("abc"), p);
        p = Packets.decode("4/client,{\"message\":\"bad widget key\"}");
        check("connect error object", p.type == Packets.CONNECT_ERROR
                && ((JSONObject) p.data).getString("message").equals("bad widget key"), p);
        p = Packets.decode("4/client,\"Unable to connect\"");
        check("connect error string", p.type == Packets.CONNECT_ERROR && "Unable to connect".equals(p.data), p);
        p = Packets.decode("3/client,12[{\"ok\":true,\"message\":{\"seq\":3}}]");
        check("ack", p.type == Packets.ACK && p.id == 12
                && ((JSONArray) p.data).getJSONObject(0).getJSONObject("message").getLong("seq") == 3, p);
        p = Packets.decode("3/client,7[]");
        check("empty ack", p.type == Packets.ACK && p.id == 7 && ((JSONArray) p.data).length() == 0, p);
        p = Packets.decode("2/client,[\"session\",{\"session\":\"t\",\"contact_id\":\"c\",\"conversations\":[]}]");
        check("event", p.type == Packets.EVENT && p.id == null
                && ((JSONArray) p.data).getString(0).equals("session"), p);
        p = Packets.decode("2/client,5[\"ping\"]");
        check("event asking for ack", p.type == Packets.EVENT && p.id == 5, p);
        p = Packets.decode("1/client,");
        check("server disconnect", p.type == Packets.DISCONNECT && p.nsp.equals("/client") && p.data == null, p);
        p = Packets.decode("2[\"x\",1]");
        check("default namespace", p.type == Packets.EVENT && p.nsp.equals("/"), p);
        p = Packets.decode("0/client?x=1,{\"sid\":\"s\"}");
        check("namespace query stripped", p.nsp.equals("/client"), p);
        p = Packets.decode("2/client,[\"message\",{\"text\":\"a,b/c 12\"}]");
        check("commas in payload", ((JSONArray) p.data).getJSONObject(1).getString("text").equals("a,b/c 12"), p);

        // ack normalisation
        JSONObject n = ParleyClient.obj("ok", true, "messages", new JSONArray().put(1));
        check("obj helper", n.getJSONArray("messages").length() == 1, n);

        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
