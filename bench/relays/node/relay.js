// Baseline Socket.IO relay for bench/realtime.py: the Parley relay logic with no storage.
// Usage: node relay.js [port]   (or PORT=... node relay.js). Binds 127.0.0.1 only.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || process.env.PORT || 8001);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  cors: { origin: false },
});

io.of("/client").on("connection", (socket) => {
  const auth = socket.handshake.auth || {};
  const room = typeof auth.room === "string" && auth.room ? auth.room : "lobby";
  socket.join(room);
  socket.on("message", (payload, ack) => {
    socket.to(room).emit("message", { conversation_id: room, message: payload });
    if (typeof ack === "function") {
      ack({ ok: true, message: payload });
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`node relay listening on 127.0.0.1:${port}`);
});

const stop = () => {
  io.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
