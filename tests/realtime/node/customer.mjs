// A Parley customer on the official socket.io-client (v4), as a web widget would be.
//
//   node customer.mjs '<json config>'
//
// config: {url, widget_key, external_id, hmac, transports?: ["websocket"], mode?: "chat" | "refused",
//          timeout_ms?: 10000}
//
// Prints one JSON line per step ({"step": ..., ...}) on stdout and exits 0 when every step
// passed; any failure prints {"step": "error", ...} and exits 1. In "chat" mode, after the
// line {"step": "waiting", "conversation_id"} the script waits for an agent's reply (the
// test posts it over REST), marks it delivered and read, and disconnects.
// In "refused" mode it connects with the given (wrong) hmac and prints the connect_error.

import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2] ?? "{}");
const TIMEOUT = config.timeout_ms ?? 10000;

function print(step, data = {}) {
  process.stdout.write(JSON.stringify({ step, ...data }) + "\n");
}

function fail(message, extra = {}) {
  print("error", { message, ...extra });
  process.exit(1);
}

// Nothing may hang: the whole run is bounded.
const watchdog = setTimeout(() => fail(`timed out after ${4 * TIMEOUT} ms`), 4 * TIMEOUT);

function once(emitter, event, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${TIMEOUT} ms`)), TIMEOUT);
    emitter.once(event, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

function expectOk(name, ack) {
  if (!ack || ack.ok !== true) fail(`${name} was not acknowledged ok`, { ack });
  return ack;
}

const options = {
  path: "/socket.io",
  auth: {
    widget_key: config.widget_key,
    user: { external_id: config.external_id, hmac: config.hmac },
  },
  reconnection: false,
  timeout: TIMEOUT,
};
if (config.transports) options.transports = config.transports;

const socket = io(`${config.url}/client`, options);
const engine = () => socket.io.engine;
// The Engine.IO transport the connection opened with, and the one it upgraded to (if any).
const opened = engine().transport.name;
const upgraded = new Promise((resolve) => engine().once("upgrade", (t) => resolve(t.name)));

async function refused() {
  const err = await once(socket, "connect_error");
  print("connect_error", { message: err.message, data: err.data ?? null });
  socket.close();
}

async function chat() {
  // The server greets with "session" from its connect handler.
  const sessionP = once(socket, "session");
  const connectErr = new Promise((_, reject) =>
    socket.once("connect_error", (err) => reject(new Error(`refused: ${err.message}`))),
  );
  await Promise.race([once(socket, "connect"), connectErr]);
  print("connected", { opened, transport: engine().transport.name, id: socket.id });

  const session = await sessionP;
  print("session", {
    contact_id: session.contact_id,
    external_id: session.external_id,
    has_session_token: typeof session.session === "string" && session.session.length > 0,
    conversations: session.conversations,
  });

  const incoming = [];
  const waiters = [];
  socket.on("message", (event) => {
    incoming.push(event);
    for (const w of waiters.splice(0)) w();
  });
  const nextAgentMessage = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no agent message within ${TIMEOUT} ms`)), TIMEOUT);
      const check = () => {
        const found = incoming.find((e) => e.message && e.message.author && e.message.author.type === "agent");
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else {
          waiters.push(check);
        }
      };
      check();
    });

  const ask = (event, payload) => socket.timeout(TIMEOUT).emitWithAck(event, payload);

  const first = expectOk(
    "message",
    await ask("message", {
      client_message_id: `node-${config.external_id}-1`,
      content: { type: "text", text: "hello from node" },
    }),
  );
  print("ack", { n: 1, ack: first });
  const conversationId = first.message.conversation_id;

  const second = expectOk(
    "message",
    await ask("message", {
      conversation_id: conversationId,
      client_message_id: `node-${config.external_id}-2`,
      content: { type: "text", text: "second, same conversation" },
    }),
  );
  print("ack", { n: 2, ack: second });

  // The same client_message_id again: the first message comes back, nothing is stored twice.
  const again = expectOk(
    "message",
    await ask("message", {
      conversation_id: conversationId,
      client_message_id: `node-${config.external_id}-2`,
      content: { type: "text", text: "second, same conversation" },
    }),
  );
  print("ack", { n: 3, ack: again });

  print("typing", { ack: expectOk("typing", await ask("typing", { conversation_id: conversationId, typing: true })) });
  print("read", { ack: expectOk("read", await ask("read", { conversation_id: conversationId, seq: second.message.seq })) });
  print("resync", {
    ack: expectOk("resync", await ask("resync", { conversation_id: conversationId, after_seq: 0 })),
  });
  const bad = await ask("resync", { conversation_id: conversationId, after_seq: "0" });
  print("invalid", { ack: bad });

  print("waiting", { conversation_id: conversationId, transport: engine().transport.name });
  const reply = await nextAgentMessage();
  print("reply", { event: reply });

  const seq = reply.message.seq;
  print("delivered", { ack: expectOk("delivered", await ask("delivered", { conversation_id: conversationId, seq })) });
  print("read_reply", { ack: expectOk("read", await ask("read", { conversation_id: conversationId, seq })) });
  await ask("typing", { conversation_id: conversationId, typing: false });

  // With the default transports the connection began as long-polling and upgrades.
  let transport = engine().transport.name;
  if (transport !== "websocket" && !config.transports) {
    transport = await Promise.race([
      upgraded,
      new Promise((resolve) => setTimeout(() => resolve(engine().transport.name), TIMEOUT)),
    ]);
  }
  print("done", { transport, others: incoming.filter((e) => e !== reply).length });
  socket.close();
}

try {
  if (config.mode === "refused") await refused();
  else await chat();
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  fail(String(err && err.message ? err.message : err));
}
