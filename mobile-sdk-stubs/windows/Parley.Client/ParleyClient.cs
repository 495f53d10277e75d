using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace Parley.Client
{
    /// <summary>The <c>user</c> auth object; <c>Hmac</c> = hex(HMAC-SHA256(identity_secret, external_id)) from your backend.</summary>
    public sealed class ParleyUser
    {
        public ParleyUser(string externalId, string? name = null, string? email = null, string? hmac = null)
        {
            ExternalId = externalId;
            Name = name;
            Email = email;
            Hmac = hmac;
        }

        public string ExternalId { get; }
        public string? Name { get; }
        public string? Email { get; }
        public string? Hmac { get; }

        internal JsonObject ToJson()
        {
            var o = new JsonObject { ["external_id"] = ExternalId };
            if (Name != null) o["name"] = Name;
            if (Email != null) o["email"] = Email;
            if (Hmac != null) o["hmac"] = Hmac;
            return o;
        }
    }

    public sealed class ParleyClientOptions
    {
        public ParleyClientOptions(Uri url, string widgetKey)
        {
            Url = url;
            WidgetKey = widgetKey;
        }

        /// <summary>http(s):// or ws(s)://host[:port][/prefix]</summary>
        public Uri Url { get; }
        public string WidgetKey { get; }
        public ParleyUser? User { get; set; }
        /// <summary>HS256 JWT signed with the identity secret, <c>sub</c> = external id.</summary>
        public string? UserToken { get; set; }
        /// <summary>Session token from an earlier <c>session</c> event.</summary>
        public string? Session { get; set; }
        public string Path { get; set; } = "/socket.io/";
        public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(20);
        public bool Reconnect { get; set; } = true;
        public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);
        public TimeSpan ReconnectDelayMax { get; set; } = TimeSpan.FromSeconds(30);
        public double RandomizationFactor { get; set; } = 0.5;
        /// <summary>Where events are raised (e.g. the UI thread's context); default: the client's own loop (do not block it).</summary>
        public SynchronizationContext? CallbackContext { get; set; }
    }

    /// <summary>
    /// Client of Parley's <c>/client</c> Socket.IO namespace over <see cref="ClientWebSocket"/>
    /// (Engine.IO v4 / Socket.IO v5 text protocol, websocket transport only). Mirrors the Android stub:
    /// session token kept for reconnects, last seq tracked per conversation, gaps and reconnects filled
    /// with <c>resync</c>, exponential backoff, unacknowledged messages resent with the same
    /// <c>client_message_id</c>. All state lives on one sequential loop (an actor).
    /// Acks are <c>{"ok": true, ...}</c> or <c>{"ok": false, "error": {"code", "message"}}</c>; client-side
    /// failures use the codes <c>timeout</c>, <c>disconnected</c>, <c>closed</c>, <c>connect_error</c>.
    /// </summary>
    public sealed class ParleyClient : IAsyncDisposable
    {
        public const string Namespace = "/client";

        private sealed class Pending
        {
            public Pending(string evt, JsonObject data, Action<JsonObject>? callback, bool retry = false, bool isVolatile = false)
            {
                Event = evt;
                Data = data;
                Callback = callback;
                Retry = retry;
                IsVolatile = isVolatile;
            }

            public string Event { get; }
            public JsonObject Data { get; }
            public Action<JsonObject>? Callback { get; } // runs on the loop
            public bool Retry { get; }
            public bool IsVolatile { get; }
            public int? AckId { get; set; }
            public CancellationTokenSource? Timer { get; set; }
            public bool Done { get; set; }
        }

        private readonly ParleyClientOptions options;
        private readonly Channel<Action> loop = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
        private readonly Random random = new Random();

        // state: only touched on the loop
        private ClientWebSocket? ws;
        private Channel<string>? outgoing;
        private int generation;
        private bool nsConnected;
        private bool everConnected;
        private bool userStopped = true;
        private bool closed;
        private bool sentSessionToken;
        private int attempt;
        private int nextAckId;
        private TimeSpan pingInterval = TimeSpan.FromSeconds(25);
        private TimeSpan pingTimeout = TimeSpan.FromSeconds(20);
        private CancellationTokenSource? watchdog;
        private CancellationTokenSource? reconnectTimer;
        private readonly List<Packets.Packet> inboundBuffer = new List<Packets.Packet>();
        private readonly List<Pending> outbox = new List<Pending>();
        private readonly SortedDictionary<int, Pending> pendingAcks = new SortedDictionary<int, Pending>();
        private readonly Dictionary<string, bool> resyncInFlight = new Dictionary<string, bool>(); // value: run again
        private readonly Dictionary<string, long> lastSeqs = new Dictionary<string, long>();
        private volatile string? sessionToken;
        private volatile string? contactId;
        private volatile bool connectedFlag;

        public ParleyClient(ParleyClientOptions options)
        {
            this.options = options ?? throw new ArgumentNullException(nameof(options));
            sessionToken = options.Session;
            _ = Task.Run(RunLoopAsync);
        }

        // ------------------------------------------------------------------ events

        public event Action<bool>? Connected;                       // reconnect?
        public event Action<JsonObject>? SessionReceived;            // {"session", "contact_id", "conversations"}
        /// <summary>In seq order per conversation, no duplicates; includes echoes of the contact's own messages.</summary>
        public event Action<string, JsonObject>? MessageReceived;    // conversation id, message
        public event Action<JsonObject>? MessageStatusReceived;
        public event Action<JsonObject>? TypingReceived;
        public event Action<JsonObject>? ReadReceived;
        public event Action<JsonObject>? ConversationUpdated;
        public event Action<string, JsonNode?>? OtherEventReceived;
        public event Action<string, bool>? ConnectError;             // message, fatal
        public event Action<string, bool>? Disconnected;             // reason, will reconnect
        public event Action<int, TimeSpan>? Reconnecting;            // attempt, delay

        // ------------------------------------------------------------------ public API

        public static string NewClientMessageId() => Guid.NewGuid().ToString();

        public static JsonObject Text(string text) => new JsonObject { ["type"] = "text", ["text"] = text };

        public bool IsConnected => connectedFlag;
        /// <summary>Token of the last <c>session</c> event: persist it to resume the same contact later.</summary>
        public string? SessionToken => sessionToken;
        public string? ContactId => contactId;

        public long LastSeq(string conversationId)
        {
            lock (lastSeqs) return lastSeqs.TryGetValue(conversationId, out var v) ? v : -1;
        }

        public void Connect() => Post(() =>
        {
            if (closed) return;
            userStopped = false;
            reconnectTimer?.Cancel();
            reconnectTimer = null;
            if (ws == null)
            {
                attempt = 0;
                OpenSocket();
            }
        });

        /// <summary>Closes the connection, keeping session token, seqs and unsent messages (app suspended).</summary>
        public void Disconnect() => Post(() =>
        {
            userStopped = true;
            reconnectTimer?.Cancel();
            reconnectTimer = null;
            Goodbye("io client disconnect");
        });

        public ValueTask DisposeAsync()
        {
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(() =>
            {
                if (!closed)
                {
                    userStopped = true;
                    reconnectTimer?.Cancel();
                    Goodbye("io client disconnect");
                    closed = true;
                    foreach (var p in outbox.ToList()) Fail(p, "closed", "client closed");
                    outbox.Clear();
                }
                done.TrySetResult(true);
                loop.Writer.TryComplete();
            });
            return new ValueTask(done.Task);
        }

        /// <summary>Emits <c>message</c> <c>{"conversation_id"?, "client_message_id", "content"}</c>; null conversation opens one.</summary>
        public Task<JsonObject> SendAsync(string? conversationId, string clientMessageId, JsonObject content)
        {
            var data = new JsonObject { ["client_message_id"] = clientMessageId, ["content"] = content.DeepClone() };
            if (conversationId != null) data["conversation_id"] = conversationId;
            var tcs = NewAck();
            Post(() => Emit(new Pending("message", data, ack =>
            {
                if (Ok(ack) && ack["message"] is JsonObject m)
                {
                    var conv = Str(m["conversation_id"]) ?? Str(ack["conversation_id"]) ?? conversationId;
                    if (conv != null) ObserveOwn(conv, m);
                }
                tcs.TrySetResult(ack);
            }, retry: true)), tcs);
            return tcs.Task;
        }

        /// <summary>Emits <c>typing</c> (dropped while offline).</summary>
        public void Typing(string conversationId, bool typing) => Post(() =>
            Emit(new Pending("typing", new JsonObject { ["conversation_id"] = conversationId, ["typing"] = typing }, null, isVolatile: true)));

        /// <summary>Emits <c>read</c> <c>{"conversation_id", "seq"}</c>.</summary>
        public void Read(string conversationId, long seq) => Post(() =>
            Emit(new Pending("read", new JsonObject { ["conversation_id"] = conversationId, ["seq"] = seq }, null)));

        /// <summary>Emits <c>resync</c> <c>{"conversation_id", "after_seq"}</c>; ack <c>{"ok": true, "messages": [...]}</c>.</summary>
        public Task<JsonObject> ResyncAsync(string conversationId, long afterSeq)
        {
            var tcs = NewAck();
            var data = new JsonObject { ["conversation_id"] = conversationId, ["after_seq"] = afterSeq };
            Post(() => Emit(new Pending("resync", data, ack =>
            {
                if (Ok(ack) && ack["messages"] is JsonArray msgs)
                {
                    lock (lastSeqs)
                    {
                        bool known = lastSeqs.TryGetValue(conversationId, out var last);
                        if (!known || afterSeq <= last)
                        {
                            long max = msgs.Select(m => AsLong(m?["seq"]) ?? -1).DefaultIfEmpty(-1).Max();
                            if (max > (known ? last : -1)) lastSeqs[conversationId] = max;
                        }
                    }
                }
                tcs.TrySetResult(ack);
            })), tcs);
            return tcs.Task;
        }

        /// <summary>Emits <c>register_push</c> <c>{"channel_type": "wns", "token"}</c>; ack <c>{"ok": true, ...}</c>.</summary>
        public Task<JsonObject> RegisterPushAsync(string channelType, string token)
        {
            var tcs = NewAck();
            var data = new JsonObject { ["channel_type"] = channelType, ["token"] = token };
            Post(() => Emit(new Pending("register_push", data, ack => tcs.TrySetResult(ack))), tcs);
            return tcs.Task;
        }

        // ------------------------------------------------------------------ the loop

        private static TaskCompletionSource<JsonObject> NewAck() =>
            new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);

        private void Post(Action action, TaskCompletionSource<JsonObject>? ack = null)
        {
            if (!loop.Writer.TryWrite(action)) ack?.TrySetResult(Error("closed", "client closed"));
        }

        private void PostAfter(TimeSpan delay, CancellationTokenSource cts, Action action)
        {
            Task.Delay(delay, cts.Token).ContinueWith(t =>
            {
                if (!t.IsCanceled) Post(() => { if (!cts.IsCancellationRequested) action(); });
            }, TaskScheduler.Default);
        }

        private async Task RunLoopAsync()
        {
            await foreach (var action in loop.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                try { action(); }
                catch (Exception e) { System.Diagnostics.Debug.WriteLine("parley: " + e); }
            }
        }

        private void Raise(Action raise)
        {
            void Safe(object? _) { try { raise(); } catch (Exception e) { System.Diagnostics.Debug.WriteLine("parley listener: " + e); } }
            if (options.CallbackContext != null) options.CallbackContext.Post(Safe, null);
            else Safe(null);
        }

        // ------------------------------------------------------------------ transport

        private Uri SocketUri()
        {
            var b = new UriBuilder(options.Url);
            if (b.Scheme == "http") b.Scheme = "ws";
            else if (b.Scheme == "https") b.Scheme = "wss";
            var path = options.Path.StartsWith("/") ? options.Path : "/" + options.Path;
            b.Path = b.Path.TrimEnd('/') + path;
            b.Query = "EIO=4&transport=websocket";
            return b.Uri;
        }

        private void OpenSocket()
        {
            int gen = ++generation;
            var socket = new ClientWebSocket();
            var send = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
            ws = socket;
            outgoing = send;
            ArmWatchdog(options.ConnectTimeout, "connect timeout");
            _ = Task.Run(() => RunSocketAsync(socket, send, gen));
        }

        private async Task RunSocketAsync(ClientWebSocket socket, Channel<string> send, int gen)
        {
            try
            {
                await socket.ConnectAsync(SocketUri(), CancellationToken.None).ConfigureAwait(false);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await foreach (var text in send.Reader.ReadAllAsync().ConfigureAwait(false))
                        {
                            var bytes = Encoding.UTF8.GetBytes(text);
                            await socket.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, CancellationToken.None)
                                .ConfigureAwait(false);
                        }
                    }
                    catch (Exception) { /* the receive side reports the failure */ }
                });
                var buffer = new byte[16 * 1024];
                var message = new List<byte>();
                while (socket.State == WebSocketState.Open)
                {
                    var r = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        Post(() => { if (gen == generation) TransportLost("transport close"); });
                        return;
                    }
                    message.AddRange(new ArraySegment<byte>(buffer, 0, r.Count));
                    if (!r.EndOfMessage) continue;
                    if (r.MessageType == WebSocketMessageType.Text)
                    {
                        var text = Encoding.UTF8.GetString(message.ToArray());
                        Post(() => { if (gen == generation) OnFrame(text); });
                    } // binary frames are not used by /client
                    message.Clear();
                }
            }
            catch (Exception e)
            {
                Post(() => { if (gen == generation) TransportLost("transport error: " + e.Message); });
            }
        }

        private void SendRaw(string text) => outgoing?.Writer.TryWrite(text);

        private void OnFrame(string text)
        {
            if (text.Length == 0) return;
            switch (text[0])
            {
                case Packets.EioOpen:
                    try
                    {
                        var open = JsonNode.Parse(text.Substring(1));
                        var pi = AsLong(open?["pingInterval"]);
                        var pt = AsLong(open?["pingTimeout"]);
                        if (pi.HasValue) pingInterval = TimeSpan.FromMilliseconds(pi.Value);
                        if (pt.HasValue) pingTimeout = TimeSpan.FromMilliseconds(pt.Value);
                    }
                    catch (System.Text.Json.JsonException) { /* keep defaults */ }
                    ArmWatchdog(pingInterval + pingTimeout, "ping timeout");
                    sentSessionToken = sessionToken != null;
                    SendRaw(Packets.Encode(Packets.Connect, Namespace, null, AuthPayload()));
                    break;
                case Packets.EioPing:
                    SendRaw(Packets.EioPong + text.Substring(1));
                    ArmWatchdog(pingInterval + pingTimeout, "ping timeout");
                    break;
                case Packets.EioClose:
                    TransportLost("io server close");
                    break;
                case Packets.EioMessage:
                    var p = Packets.Decode(text.Substring(1));
                    if (p != null) OnPacket(p);
                    break;
                default: // pong, upgrade, noop
                    break;
            }
        }

        private JsonObject AuthPayload()
        {
            var auth = new JsonObject { ["widget_key"] = options.WidgetKey };
            if (sessionToken != null) auth["session"] = sessionToken;
            if (options.User != null) auth["user"] = options.User.ToJson();
            if (options.UserToken != null) auth["user_token"] = options.UserToken;
            return auth;
        }

        private void OnPacket(Packets.Packet p)
        {
            if (p.Nsp != Namespace) return;
            switch (p.Type)
            {
                case Packets.Connect:
                {
                    nsConnected = connectedFlag = true;
                    bool again = everConnected;
                    everConnected = true;
                    attempt = 0;
                    Raise(() => Connected?.Invoke(again));
                    // events sent before the CONNECT answer (e.g. "session") were buffered
                    var buffered = inboundBuffer.ToList();
                    inboundBuffer.Clear();
                    foreach (var b in buffered) OnEvent(b);
                    List<string> convs;
                    lock (lastSeqs) convs = lastSeqs.Keys.ToList();
                    foreach (var c in convs) RequestResync(c);
                    var queued = outbox.ToList();
                    outbox.Clear();
                    foreach (var q in queued) Transmit(q);
                    break;
                }
                case Packets.ConnectError:
                {
                    string msg = p.Data is JsonObject o ? Str(o["message"]) ?? o.ToJsonString() : Str(p.Data) ?? "connection refused";
                    bool retryWithoutSession = sentSessionToken;
                    if (retryWithoutSession) sessionToken = null; else userStopped = true;
                    Raise(() => ConnectError?.Invoke(msg, !retryWithoutSession));
                    if (!retryWithoutSession)
                    {
                        foreach (var q in outbox.ToList()) Fail(q, "connect_error", msg);
                        outbox.Clear();
                    }
                    TransportLost("connect error: " + msg);
                    break;
                }
                case Packets.Disconnect:
                    userStopped = true; // kicked by the server: do not reconnect
                    TransportLost("io server disconnect");
                    break;
                case Packets.Event:
                    if (nsConnected) OnEvent(p); else inboundBuffer.Add(p);
                    break;
                case Packets.Ack:
                    if (p.Id.HasValue && pendingAcks.TryGetValue(p.Id.Value, out var pending))
                    {
                        pendingAcks.Remove(p.Id.Value);
                        Complete(pending, NormalizeAck(p.Data));
                    }
                    break;
                default: // binary packets are not part of this protocol
                    break;
            }
        }

        private static JsonObject NormalizeAck(JsonNode? data)
        {
            var first = data is JsonArray a && a.Count > 0 ? a[0] : null;
            if (first is JsonObject o) return (JsonObject)o.DeepClone();
            if (first is JsonArray list) return new JsonObject { ["ok"] = true, ["messages"] = list.DeepClone() };
            return Error("bad_ack", "unexpected ack payload: " + data?.ToJsonString());
        }

        private void OnEvent(Packets.Packet p)
        {
            if (!(p.Data is JsonArray arr) || arr.Count == 0 || Str(arr[0]) is not string name) return;
            JsonNode? arg = arr.Count > 1 ? arr[1]?.DeepClone() : null;
            if (p.Id.HasValue) SendRaw(Packets.Encode(Packets.Ack, Namespace, p.Id, new JsonArray())); // server wants an ack
            if (!(arg is JsonObject d))
            {
                Raise(() => OtherEventReceived?.Invoke(name, arg));
                return;
            }
            switch (name)
            {
                case "session":
                    if (Str(d["session"]) is string s) sessionToken = s;
                    if (Str(d["contact_id"]) is string c) contactId = c;
                    Raise(() => SessionReceived?.Invoke(d));
                    break;
                case "message":
                    if (d["message"] is JsonObject m)
                    {
                        var conv = Str(d["conversation_id"]) ?? Str(m["conversation_id"]) ?? "";
                        ObserveIncoming(conv, (JsonObject)m.DeepClone());
                    }
                    break;
                case "message.status": Raise(() => MessageStatusReceived?.Invoke(d)); break;
                case "typing": Raise(() => TypingReceived?.Invoke(d)); break;
                case "read": Raise(() => ReadReceived?.Invoke(d)); break;
                case "conversation.updated": Raise(() => ConversationUpdated?.Invoke(d)); break;
                default: Raise(() => OtherEventReceived?.Invoke(name, d)); break;
            }
        }

        /// <summary>Client-initiated close of the current socket.</summary>
        private void Goodbye(string reason)
        {
            if (ws == null) return;
            if (nsConnected) SendRaw(Packets.Encode(Packets.Disconnect, Namespace));
            TransportLost(reason);
        }

        private void TransportLost(string reason)
        {
            if (ws == null) return;
            generation++; // late callbacks of the old socket are ignored
            var socket = ws;
            var send = outgoing;
            ws = null;
            outgoing = null;
            send?.Writer.TryComplete(); // flushes a pending "41/client," before the close
            _ = Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(100).ConfigureAwait(false); // let the sender flush
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    if (socket.State == WebSocketState.Open)
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
                }
                catch (Exception) { /* already gone */ }
                finally { socket.Dispose(); }
            });
            watchdog?.Cancel();
            watchdog = null;
            nsConnected = connectedFlag = false;
            inboundBuffer.Clear();
            resyncInFlight.Clear();
            var requeue = new List<Pending>();
            foreach (var p in pendingAcks.Values)
            {
                p.AckId = null;
                if (p.Retry && !closed) requeue.Add(p); else Fail(p, "disconnected", reason);
            }
            pendingAcks.Clear();
            outbox.InsertRange(0, requeue);
            bool willReconnect = options.Reconnect && !userStopped && !closed;
            Raise(() => Disconnected?.Invoke(reason, willReconnect));
            if (willReconnect) ScheduleReconnect();
        }

        private void ScheduleReconnect()
        {
            attempt++;
            double ms = options.ReconnectDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 16));
            ms = Math.Min(ms, options.ReconnectDelayMax.TotalMilliseconds);
            double f = options.RandomizationFactor;
            ms = Math.Min(ms * (1 - f + 2 * f * random.NextDouble()), options.ReconnectDelayMax.TotalMilliseconds);
            var delay = TimeSpan.FromMilliseconds(ms);
            int n = attempt;
            Raise(() => Reconnecting?.Invoke(n, delay));
            reconnectTimer?.Cancel();
            var cts = new CancellationTokenSource();
            reconnectTimer = cts;
            PostAfter(delay, cts, () =>
            {
                reconnectTimer = null;
                if (!userStopped && !closed && ws == null) OpenSocket();
            });
        }

        private void ArmWatchdog(TimeSpan after, string reason)
        {
            watchdog?.Cancel();
            int gen = generation;
            var cts = new CancellationTokenSource();
            watchdog = cts;
            PostAfter(after, cts, () => { if (gen == generation && ws != null) TransportLost(reason); });
        }

        // ------------------------------------------------------------------ emits and acks

        private void Emit(Pending p)
        {
            if (closed) { Fail(p, "closed", "client closed"); return; }
            if (p.Callback != null)
            {
                var cts = new CancellationTokenSource();
                p.Timer = cts;
                PostAfter(options.AckTimeout, cts, () =>
                {
                    if (p.AckId.HasValue) pendingAcks.Remove(p.AckId.Value);
                    outbox.Remove(p);
                    Complete(p, Error("timeout", $"no ack for '{p.Event}' within {options.AckTimeout.TotalSeconds} s"));
                });
            }
            if (nsConnected) Transmit(p);
            else if (!p.IsVolatile) outbox.Add(p);
        }

        private void Transmit(Pending p)
        {
            int? id = null;
            if (p.Callback != null)
            {
                id = nextAckId++;
                p.AckId = id;
                pendingAcks[id.Value] = p;
            }
            var args = new JsonArray { p.Event, p.Data.DeepClone() };
            SendRaw(Packets.Encode(Packets.Event, Namespace, id, args));
        }

        private void Complete(Pending p, JsonObject ack)
        {
            if (p.Done) return;
            p.Done = true;
            p.Timer?.Cancel();
            p.Callback?.Invoke(ack);
        }

        private void Fail(Pending p, string code, string message) => Complete(p, Error(code, message));

        // ------------------------------------------------------------------ seq tracking

        private void Deliver(string conv, JsonObject m) => Raise(() => MessageReceived?.Invoke(conv, m));

        private void ObserveIncoming(string conv, JsonObject m)
        {
            long? seq = AsLong(m["seq"]);
            if (seq == null || conv.Length == 0) { Deliver(conv, m); return; }
            bool deliver = false, gap = false;
            lock (lastSeqs)
            {
                bool known = lastSeqs.TryGetValue(conv, out var last);
                if (!known || seq == last + 1) { lastSeqs[conv] = seq.Value; deliver = true; }
                else if (seq > last + 1) gap = true; // else duplicate
            }
            if (deliver) Deliver(conv, m);
            if (gap) RequestResync(conv); // fetch everything after `last`, this message included
        }

        private void ObserveOwn(string conv, JsonObject m)
        {
            long? seq = AsLong(m["seq"]);
            if (seq == null) return;
            bool gap = false;
            lock (lastSeqs)
            {
                bool known = lastSeqs.TryGetValue(conv, out var last);
                if (!known || seq == last + 1) lastSeqs[conv] = seq.Value;
                else if (seq > last + 1) gap = true;
            }
            if (gap) RequestResync(conv);
        }

        private void RequestResync(string conv)
        {
            if (resyncInFlight.ContainsKey(conv)) { resyncInFlight[conv] = true; return; }
            resyncInFlight[conv] = false;
            long after;
            lock (lastSeqs) after = lastSeqs.TryGetValue(conv, out var l) ? l : 0;
            var data = new JsonObject { ["conversation_id"] = conv, ["after_seq"] = after };
            Emit(new Pending("resync", data, ack =>
            {
                resyncInFlight.Remove(conv, out bool again);
                if (!Ok(ack) || !(ack["messages"] is JsonArray msgs)) return;
                foreach (var m in msgs.OfType<JsonObject>().OrderBy(x => AsLong(x["seq"]) ?? -1).ToList())
                {
                    long? seq = AsLong(m["seq"]);
                    if (seq == null) continue;
                    bool fresh;
                    lock (lastSeqs)
                    {
                        fresh = !lastSeqs.TryGetValue(conv, out var cur) || seq > cur;
                        if (fresh) lastSeqs[conv] = seq.Value;
                    }
                    if (fresh) Deliver(conv, (JsonObject)m.DeepClone());
                }
                if (again) RequestResync(conv);
            }));
        }

        // ------------------------------------------------------------------ helpers

        private static bool Ok(JsonObject ack) => ack["ok"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;

        private static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

        private static long? AsLong(JsonNode? n) => n is JsonValue v && v.TryGetValue<long>(out var l) ? l : (long?)null;

        private static JsonObject Error(string code, string message) =>
            new JsonObject { ["ok"] = false, ["error"] = new JsonObject { ["code"] = code, ["message"] = message } };
    }
}
