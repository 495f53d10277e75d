import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public typealias JSON = [String: Any]
/// Ack payload: `["ok": true, ...]` or `["ok": false, "error": ["code", "message"]]`.
/// Client-side failures use the codes `timeout`, `disconnected`, `closed`, `connect_error`.
public typealias ParleyAck = (JSON) -> Void

/// Events of the `/client` namespace. Every method has an empty default implementation.
/// Called on `ParleyClient.Options.callbackQueue` (default: the main queue).
public protocol ParleyClientDelegate: AnyObject {
    func parleyDidConnect(_ client: ParleyClient, reconnect: Bool)
    /// `session` event: `["session", "contact_id", "conversations"]`; the token is already stored.
    func parley(_ client: ParleyClient, didReceiveSession session: JSON)
    /// `message` event (or a message recovered by resync): in seq order per conversation, no duplicates;
    /// includes echoes of the contact's own messages (with their `client_message_id`).
    func parley(_ client: ParleyClient, didReceiveMessage message: JSON, inConversation conversationId: String)
    func parley(_ client: ParleyClient, didReceiveMessageStatus data: JSON)
    func parley(_ client: ParleyClient, didReceiveTyping data: JSON)
    func parley(_ client: ParleyClient, didReceiveRead data: JSON)
    func parley(_ client: ParleyClient, didUpdateConversation data: JSON)
    func parley(_ client: ParleyClient, didReceiveEvent name: String, data: Any?)
    /// `fatal`: the client gave up (bad widget key, hmac or token).
    func parley(_ client: ParleyClient, connectErrorWithMessage message: String, fatal: Bool)
    func parley(_ client: ParleyClient, didDisconnectWithReason reason: String, willReconnect: Bool)
    func parley(_ client: ParleyClient, willReconnectAttempt attempt: Int, after delay: TimeInterval)
}

public extension ParleyClientDelegate {
    func parleyDidConnect(_ client: ParleyClient, reconnect: Bool) {}
    func parley(_ client: ParleyClient, didReceiveSession session: JSON) {}
    func parley(_ client: ParleyClient, didReceiveMessage message: JSON, inConversation conversationId: String) {}
    func parley(_ client: ParleyClient, didReceiveMessageStatus data: JSON) {}
    func parley(_ client: ParleyClient, didReceiveTyping data: JSON) {}
    func parley(_ client: ParleyClient, didReceiveRead data: JSON) {}
    func parley(_ client: ParleyClient, didUpdateConversation data: JSON) {}
    func parley(_ client: ParleyClient, didReceiveEvent name: String, data: Any?) {}
    func parley(_ client: ParleyClient, connectErrorWithMessage message: String, fatal: Bool) {}
    func parley(_ client: ParleyClient, didDisconnectWithReason reason: String, willReconnect: Bool) {}
    func parley(_ client: ParleyClient, willReconnectAttempt attempt: Int, after delay: TimeInterval) {}
}

/// Client of Parley's `/client` Socket.IO namespace over `URLSessionWebSocketTask`
/// (Engine.IO v4 / Socket.IO v5 text protocol, websocket transport only). Mirrors the Android
/// stub: session token kept for reconnects, last seq tracked per conversation, gaps and
/// reconnects filled with `resync`, exponential backoff, unacknowledged messages resent with
/// the same `client_message_id`. All state lives on one serial queue.
public final class ParleyClient {
    public static let namespace = "/client"

    public struct User {
        public var externalId: String
        public var name: String?
        public var email: String?
        /// hex(HMAC-SHA256(identity_secret, external_id)), computed by your backend.
        public var hmac: String?

        public init(externalId: String, name: String? = nil, email: String? = nil, hmac: String? = nil) {
            self.externalId = externalId
            self.name = name
            self.email = email
            self.hmac = hmac
        }

        var json: JSON {
            var o: JSON = ["external_id": externalId]
            if let name = name { o["name"] = name }
            if let email = email { o["email"] = email }
            if let hmac = hmac { o["hmac"] = hmac }
            return o
        }
    }

    public struct Options {
        /// http(s):// or ws(s)://host[:port][/prefix]
        public var url: URL
        public var widgetKey: String
        public var user: User?
        /// HS256 JWT signed with the identity secret, `sub` = external id.
        public var userToken: String?
        /// Session token from an earlier `session` event.
        public var session: String?
        public var path = "/socket.io/"
        public var ackTimeout: TimeInterval = 30
        public var connectTimeout: TimeInterval = 20
        public var reconnect = true
        public var reconnectDelay: TimeInterval = 1
        public var reconnectDelayMax: TimeInterval = 30
        public var randomizationFactor = 0.5
        public var callbackQueue: DispatchQueue = .main

        public init(url: URL, widgetKey: String) {
            self.url = url
            self.widgetKey = widgetKey
        }
    }

    private final class Pending {
        let event: String
        let data: JSON
        let callback: ParleyAck?   // runs on the client queue
        let retry: Bool            // resend after reconnect if unacknowledged
        let isVolatile: Bool       // dropped while offline
        var ackId: Int?
        var timer: DispatchWorkItem?
        var done = false

        init(_ event: String, _ data: JSON, retry: Bool = false, isVolatile: Bool = false, callback: ParleyAck?) {
            self.event = event
            self.data = data
            self.retry = retry
            self.isVolatile = isVolatile
            self.callback = callback
        }
    }

    public weak var delegate: ParleyClientDelegate?
    private let options: Options
    private let queue = DispatchQueue(label: "io.parley.client")
    private let session: URLSession

    // state: only touched on `queue`
    private var task: URLSessionWebSocketTask?
    private var generation = 0
    private var nsConnected = false
    private var everConnected = false
    private var userStopped = true
    private var closed = false
    private var sentSessionToken = false
    private var attempt = 0
    private var nextAckId = 0
    private var pingInterval: TimeInterval = 25
    private var pingTimeout: TimeInterval = 20
    private var watchdog: DispatchWorkItem?
    private var reconnectItem: DispatchWorkItem?
    private var inboundBuffer: [Packets.Packet] = []
    private var outbox: [Pending] = []
    private var pendingAcks: [Int: Pending] = [:]
    private var resyncInFlight: [String: Bool] = [:]  // value: run again when done
    private var lastSeqs: [String: Int64] = [:]
    private var sessionToken: String?
    private var contactIdValue: String?

    public init(options: Options, delegate: ParleyClientDelegate? = nil) {
        self.options = options
        self.delegate = delegate
        self.sessionToken = options.session
        self.session = URLSession(configuration: .default)
    }

    // MARK: public API

    public static func newClientMessageId() -> String { UUID().uuidString.lowercased() }

    public static func text(_ text: String) -> JSON { ["type": "text", "text": text] }

    public func connect() {
        queue.async {
            guard !self.closed else { return }
            self.userStopped = false
            self.reconnectItem?.cancel()
            self.reconnectItem = nil
            if self.task == nil {
                self.attempt = 0
                self.openSocket()
            }
        }
    }

    /// Closes the connection, keeping session token, seqs and unsent messages (use when backgrounded).
    public func disconnect() {
        queue.async {
            self.userStopped = true
            self.reconnectItem?.cancel()
            self.reconnectItem = nil
            self.goodbye(reason: "io client disconnect")
        }
    }

    /// Disconnects for good; pending acks fail with `closed`.
    public func close() {
        queue.async {
            guard !self.closed else { return }
            self.userStopped = true
            self.reconnectItem?.cancel()
            self.goodbye(reason: "io client disconnect")
            self.closed = true
            let queued = self.outbox
            self.outbox.removeAll()
            queued.forEach { self.fail($0, "closed", "client closed") }
            self.session.invalidateAndCancel()
        }
    }

    /// Emits `message` `{"conversation_id"?, "client_message_id", "content"}`; nil conversation opens one.
    public func send(conversationId: String?, clientMessageId: String, content: JSON, ack: ParleyAck? = nil) {
        var data: JSON = ["client_message_id": clientMessageId, "content": content]
        if let c = conversationId { data["conversation_id"] = c }
        let user = toUser(ack)
        queue.async {
            self.emit(Pending("message", data, retry: true) { a in
                if ParleyClient.ok(a), let m = a["message"] as? JSON {
                    let conv = ParleyClient.str(m["conversation_id"]) ?? ParleyClient.str(a["conversation_id"]) ?? conversationId
                    if let conv = conv { self.observeOwn(conv, m) }
                }
                user(a)
            })
        }
    }

    /// Emits `typing` (dropped while offline).
    public func typing(conversationId: String, _ typing: Bool) {
        queue.async {
            self.emit(Pending("typing", ["conversation_id": conversationId, "typing": typing], isVolatile: true, callback: nil))
        }
    }

    /// Emits `read` `{"conversation_id", "seq"}`.
    public func read(conversationId: String, seq: Int64) {
        queue.async {
            self.emit(Pending("read", ["conversation_id": conversationId, "seq": seq], callback: nil))
        }
    }

    /// Emits `resync` `{"conversation_id", "after_seq"}`; ack `{"ok": true, "messages": [...]}` in seq order.
    public func resync(conversationId: String, afterSeq: Int64, ack: ParleyAck? = nil) {
        let user = toUser(ack)
        queue.async {
            self.emit(Pending("resync", ["conversation_id": conversationId, "after_seq": afterSeq]) { a in
                if ParleyClient.ok(a), let msgs = a["messages"] as? [JSON] {
                    let last = self.lastSeqs[conversationId]
                    if last == nil || afterSeq <= last! {
                        let maxSeq = msgs.compactMap { ParleyClient.int64($0["seq"]) }.max() ?? -1
                        if maxSeq > (last ?? -1) { self.lastSeqs[conversationId] = maxSeq }
                    }
                }
                user(a)
            })
        }
    }

    /// Emits `register_push` `{"channel_type": "apns", "token"}`; ack `{"ok": true, ...}`.
    public func registerPush(channelType: String, token: String, ack: ParleyAck? = nil) {
        let user = toUser(ack)
        queue.async {
            self.emit(Pending("register_push", ["channel_type": channelType, "token": token], callback: user))
        }
    }

    public var isConnected: Bool { queue.sync { nsConnected } }
    /// Token of the last `session` event: persist it (Keychain) to resume the same contact later.
    public var currentSessionToken: String? { queue.sync { sessionToken } }
    public var contactId: String? { queue.sync { contactIdValue } }
    public func lastSeq(conversationId: String) -> Int64 { queue.sync { lastSeqs[conversationId] ?? -1 } }

    // MARK: transport

    private func socketURL() -> URL? {
        guard var comps = URLComponents(url: options.url, resolvingAgainstBaseURL: false) else { return nil }
        switch comps.scheme {
        case "http": comps.scheme = "ws"
        case "https": comps.scheme = "wss"
        default: break
        }
        var base = comps.path
        while base.hasSuffix("/") { base.removeLast() }
        comps.path = base + (options.path.hasPrefix("/") ? options.path : "/" + options.path)
        comps.queryItems = [URLQueryItem(name: "EIO", value: "4"), URLQueryItem(name: "transport", value: "websocket")]
        return comps.url
    }

    private func openSocket() {
        generation += 1
        guard let url = socketURL() else { return }
        let t = session.webSocketTask(with: url)
        task = t
        armWatchdog(options.connectTimeout, reason: "connect timeout")
        t.resume()
        receive(t, generation)
    }

    private func receive(_ t: URLSessionWebSocketTask, _ gen: Int) {
        t.receive { [weak self] result in
            guard let self = self else { return }
            self.queue.async {
                guard gen == self.generation else { return }
                switch result {
                case .success(.string(let text)):
                    self.onFrame(text)
                    if gen == self.generation { self.receive(t, gen) }
                case .success:
                    self.receive(t, gen) // binary frames are not used by /client
                case .failure(let error):
                    self.transportLost("transport error: \(error.localizedDescription)")
                }
            }
        }
    }

    private func sendRaw(_ text: String) {
        task?.send(.string(text)) { _ in } // failures surface through receive()
    }

    private func onFrame(_ text: String) {
        guard let kind = text.first else { return }
        switch kind {
        case Packets.eioOpen:
            if let open = Packets.parse(String(text.dropFirst())) as? JSON {
                if let i = ParleyClient.int64(open["pingInterval"]) { pingInterval = TimeInterval(i) / 1000 }
                if let t = ParleyClient.int64(open["pingTimeout"]) { pingTimeout = TimeInterval(t) / 1000 }
            }
            armWatchdog(pingInterval + pingTimeout, reason: "ping timeout")
            sentSessionToken = sessionToken != nil
            sendRaw(Packets.encode(type: Packets.connect, nsp: ParleyClient.namespace, data: authPayload()))
        case Packets.eioPing:
            sendRaw(String(Packets.eioPong) + text.dropFirst())
            armWatchdog(pingInterval + pingTimeout, reason: "ping timeout")
        case Packets.eioClose:
            task?.cancel(with: .normalClosure, reason: nil)
            transportLost("io server close")
        case Packets.eioMessage:
            if let p = Packets.decode(String(text.dropFirst())) { onPacket(p) }
        default:
            break // pong, upgrade, noop
        }
    }

    private func authPayload() -> JSON {
        var auth: JSON = ["widget_key": options.widgetKey]
        if let s = sessionToken { auth["session"] = s }
        if let u = options.user { auth["user"] = u.json }
        if let t = options.userToken { auth["user_token"] = t }
        return auth
    }

    private func onPacket(_ p: Packets.Packet) {
        guard p.nsp == ParleyClient.namespace else { return }
        switch p.type {
        case Packets.connect:
            nsConnected = true
            let again = everConnected
            everConnected = true
            attempt = 0
            notify { $0.parleyDidConnect(self, reconnect: again) }
            // events sent before the CONNECT answer (e.g. "session") were buffered
            let buffered = inboundBuffer
            inboundBuffer.removeAll()
            buffered.forEach(onEvent)
            lastSeqs.keys.forEach(requestResync)
            let queued = outbox
            outbox.removeAll()
            queued.forEach(transmit)
        case Packets.connectError:
            let msg = ((p.data as? JSON)?["message"] as? String) ?? (p.data as? String) ?? "connection refused"
            let retryWithoutSession = sentSessionToken
            if retryWithoutSession { sessionToken = nil } else { userStopped = true }
            notify { $0.parley(self, connectErrorWithMessage: msg, fatal: !retryWithoutSession) }
            if !retryWithoutSession {
                let queued = outbox
                outbox.removeAll()
                queued.forEach { fail($0, "connect_error", msg) }
            }
            task?.cancel(with: .normalClosure, reason: nil)
            transportLost("connect error: \(msg)")
        case Packets.disconnect:
            userStopped = true // kicked by the server: do not reconnect
            task?.cancel(with: .normalClosure, reason: nil)
            transportLost("io server disconnect")
        case Packets.event:
            if nsConnected { onEvent(p) } else { inboundBuffer.append(p) }
        case Packets.ack:
            if let id = p.id, let pending = pendingAcks.removeValue(forKey: id) {
                complete(pending, ParleyClient.normalizeAck(p.data))
            }
        default:
            break // binary packets are not part of this protocol
        }
    }

    private static func normalizeAck(_ data: Any?) -> JSON {
        let first = (data as? [Any])?.first
        if let o = first as? JSON { return o }
        if let list = first as? [Any] { return ["ok": true, "messages": list] }
        return error("bad_ack", "unexpected ack payload: \(String(describing: data))")
    }

    private func onEvent(_ p: Packets.Packet) {
        guard let arr = p.data as? [Any], let name = arr.first as? String else { return }
        let arg: Any? = arr.count > 1 ? arr[1] : nil
        if let id = p.id { // the server asked for an ack
            sendRaw(Packets.encode(type: Packets.ack, nsp: ParleyClient.namespace, id: id, data: [Any]()))
        }
        guard let d = arg as? JSON else {
            notify { $0.parley(self, didReceiveEvent: name, data: arg) }
            return
        }
        switch name {
        case "session":
            if let s = ParleyClient.str(d["session"]) { sessionToken = s }
            if let c = ParleyClient.str(d["contact_id"]) { contactIdValue = c }
            notify { $0.parley(self, didReceiveSession: d) }
        case "message":
            guard let m = d["message"] as? JSON else { return }
            let conv = ParleyClient.str(d["conversation_id"]) ?? ParleyClient.str(m["conversation_id"]) ?? ""
            observeIncoming(conv, m)
        case "message.status": notify { $0.parley(self, didReceiveMessageStatus: d) }
        case "typing": notify { $0.parley(self, didReceiveTyping: d) }
        case "read": notify { $0.parley(self, didReceiveRead: d) }
        case "conversation.updated": notify { $0.parley(self, didUpdateConversation: d) }
        default: notify { $0.parley(self, didReceiveEvent: name, data: d) }
        }
    }

    /// Client-initiated close of the current socket.
    private func goodbye(reason: String) {
        guard let t = task else { return }
        if nsConnected { sendRaw(Packets.encode(type: Packets.disconnect, nsp: ParleyClient.namespace)) }
        t.cancel(with: .normalClosure, reason: nil)
        transportLost(reason)
    }

    private func transportLost(_ reason: String) {
        guard task != nil else { return }
        generation += 1 // late callbacks of the old socket are ignored
        task = nil
        watchdog?.cancel()
        watchdog = nil
        nsConnected = false
        inboundBuffer.removeAll()
        resyncInFlight.removeAll()
        var requeue: [Pending] = []
        for id in pendingAcks.keys.sorted() {
            let p = pendingAcks[id]!
            p.ackId = nil
            if p.retry && !closed { requeue.append(p) } else { fail(p, "disconnected", reason) }
        }
        pendingAcks.removeAll()
        outbox.insert(contentsOf: requeue, at: 0)
        let willReconnect = options.reconnect && !userStopped && !closed
        notify { $0.parley(self, didDisconnectWithReason: reason, willReconnect: willReconnect) }
        if willReconnect { scheduleReconnect() }
    }

    private func scheduleReconnect() {
        attempt += 1
        var delay = options.reconnectDelay * pow(2, Double(min(attempt - 1, 16)))
        delay = min(delay, options.reconnectDelayMax)
        let f = options.randomizationFactor
        delay = min(delay * (1 - f + 2 * f * Double.random(in: 0..<1)), options.reconnectDelayMax)
        let n = attempt
        notify { $0.parley(self, willReconnectAttempt: n, after: delay) }
        reconnectItem?.cancel()
        let item = DispatchWorkItem { [weak self] in
            guard let self = self else { return }
            self.reconnectItem = nil
            if !self.userStopped && !self.closed && self.task == nil { self.openSocket() }
        }
        reconnectItem = item
        queue.asyncAfter(deadline: .now() + delay, execute: item)
    }

    private func armWatchdog(_ seconds: TimeInterval, reason: String) {
        watchdog?.cancel()
        let gen = generation
        let item = DispatchWorkItem { [weak self] in
            guard let self = self, gen == self.generation, let t = self.task else { return }
            t.cancel(with: .abnormalClosure, reason: nil)
            self.transportLost(reason)
        }
        watchdog = item
        queue.asyncAfter(deadline: .now() + seconds, execute: item)
    }

    // MARK: emits and acks

    private func emit(_ p: Pending) {
        if closed { fail(p, "closed", "client closed"); return }
        if p.callback != nil {
            let timer = DispatchWorkItem { [weak self, weak p] in
                guard let self = self, let p = p else { return }
                if let id = p.ackId { self.pendingAcks.removeValue(forKey: id) }
                self.outbox.removeAll { $0 === p }
                self.complete(p, ParleyClient.error("timeout", "no ack for '\(p.event)' within \(self.options.ackTimeout) s"))
            }
            p.timer = timer
            queue.asyncAfter(deadline: .now() + options.ackTimeout, execute: timer)
        }
        if nsConnected { transmit(p) } else if !p.isVolatile { outbox.append(p) }
    }

    private func transmit(_ p: Pending) {
        var id: Int?
        if p.callback != nil {
            id = nextAckId
            nextAckId += 1
            p.ackId = id
            pendingAcks[id!] = p
        }
        sendRaw(Packets.encode(type: Packets.event, nsp: ParleyClient.namespace, id: id, data: [p.event, p.data]))
    }

    private func complete(_ p: Pending, _ ack: JSON) {
        guard !p.done else { return }
        p.done = true
        p.timer?.cancel()
        p.callback?(ack)
    }

    private func fail(_ p: Pending, _ code: String, _ message: String) {
        complete(p, ParleyClient.error(code, message))
    }

    private func toUser(_ ack: ParleyAck?) -> ParleyAck {
        let q = options.callbackQueue
        return { a in if let ack = ack { q.async { ack(a) } } }
    }

    private func notify(_ body: @escaping (ParleyClientDelegate) -> Void) {
        options.callbackQueue.async { [weak self] in
            if let d = self?.delegate { body(d) }
        }
    }

    // MARK: seq tracking

    private func deliver(_ conv: String, _ m: JSON) {
        notify { $0.parley(self, didReceiveMessage: m, inConversation: conv) }
    }

    private func observeIncoming(_ conv: String, _ m: JSON) {
        guard let seq = ParleyClient.int64(m["seq"]), !conv.isEmpty else { deliver(conv, m); return }
        let last = lastSeqs[conv]
        if last == nil || seq == last! + 1 {
            lastSeqs[conv] = seq
            deliver(conv, m)
        } else if seq > last! + 1 {
            requestResync(conv) // gap: fetch everything after `last`, this message included
        } // else duplicate
    }

    private func observeOwn(_ conv: String, _ m: JSON) {
        guard let seq = ParleyClient.int64(m["seq"]) else { return }
        let last = lastSeqs[conv]
        if last == nil || seq == last! + 1 { lastSeqs[conv] = seq } else if seq > last! + 1 { requestResync(conv) }
    }

    private func requestResync(_ conv: String) {
        if resyncInFlight[conv] != nil { resyncInFlight[conv] = true; return }
        resyncInFlight[conv] = false
        let after = lastSeqs[conv] ?? 0
        emit(Pending("resync", ["conversation_id": conv, "after_seq": after]) { [weak self] ack in
            guard let self = self else { return }
            let again = self.resyncInFlight.removeValue(forKey: conv) ?? false
            guard ParleyClient.ok(ack), let msgs = ack["messages"] as? [JSON] else { return }
            let sorted = msgs.sorted { (ParleyClient.int64($0["seq"]) ?? -1) < (ParleyClient.int64($1["seq"]) ?? -1) }
            for m in sorted {
                guard let seq = ParleyClient.int64(m["seq"]) else { continue }
                if let cur = self.lastSeqs[conv], seq <= cur { continue }
                self.lastSeqs[conv] = seq
                self.deliver(conv, m)
            }
            if again { self.requestResync(conv) }
        })
    }

    // MARK: helpers

    static func ok(_ ack: JSON) -> Bool { (ack["ok"] as? Bool) ?? false }

    static func str(_ v: Any?) -> String? {
        switch v {
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return nil // missing or NSNull
        }
    }

    static func int64(_ v: Any?) -> Int64? {
        if let n = v as? NSNumber { return n.int64Value }
        if let i = v as? Int { return Int64(i) }
        if let i = v as? Int64 { return i }
        return nil
    }

    static func error(_ code: String, _ message: String) -> JSON {
        ["ok": false, "error": ["code": code, "message": message]]
    }
}
