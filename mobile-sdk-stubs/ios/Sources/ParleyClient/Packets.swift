import Foundation

/// Engine.IO v4 / Socket.IO v5 text packet codec (no binary attachments).
///
/// Engine.IO text frame: one type digit + payload (`0` open, `1` close, `2` ping, `3` pong,
/// `4` message, `5` upgrade, `6` noop). A Socket.IO packet rides in an Engine.IO message and
/// reads `<type>[<nsp>,][<ack id>][<json>]`, e.g. `42/client,12["message",{...}]`.
enum Packets {
    // Engine.IO
    static let eioOpen: Character = "0"
    static let eioClose: Character = "1"
    static let eioPing: Character = "2"
    static let eioPong: Character = "3"
    static let eioMessage: Character = "4"

    // Socket.IO
    static let connect = 0
    static let disconnect = 1
    static let event = 2
    static let ack = 3
    static let connectError = 4
    static let binaryEvent = 5
    static let binaryAck = 6

    struct Packet {
        let type: Int
        let nsp: String
        let id: Int?
        /// [String: Any], [Any], String, NSNumber, NSNull or nil
        let data: Any?
    }

    /// A complete Engine.IO text frame (leading `4`) carrying one Socket.IO packet.
    static func encode(type: Int, nsp: String, id: Int? = nil, data: Any? = nil) -> String {
        var s = "4\(type)"
        if nsp != "/" { s += nsp + "," }
        if let id = id { s += String(id) }
        if let data = data { s += json(data) }
        return s
    }

    /// Decodes a Socket.IO packet: the payload of an Engine.IO message frame, without its `4`.
    static func decode(_ s: String) -> Packet? {
        guard let first = s.first, let type = first.wholeNumberValue, (connect...binaryAck).contains(type) else {
            return nil
        }
        var rest = s.dropFirst()
        if type == binaryEvent || type == binaryAck {
            guard let dash = rest.firstIndex(of: "-") else { return nil }
            rest = rest[rest.index(after: dash)...]
        }
        var nsp = "/"
        if rest.first == "/" {
            if let comma = rest.firstIndex(of: ",") {
                nsp = String(rest[..<comma])
                rest = rest[rest.index(after: comma)...]
            } else {
                nsp = String(rest)
                rest = rest[rest.endIndex...]
            }
            if let q = nsp.firstIndex(of: "?") { nsp = String(nsp[..<q]) }
        }
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        let id = digits.isEmpty ? nil : Int(digits)
        rest = rest.dropFirst(digits.count)
        var data: Any?
        if !rest.isEmpty {
            guard let value = parse(String(rest)) else { return nil }
            data = value
        }
        return Packet(type: type, nsp: nsp, id: id, data: data)
    }

    static func parse(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    static func json(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
              let data = try? JSONSerialization.data(withJSONObject: value, options: []),
              let s = String(data: data, encoding: .utf8) else {
            return "null"
        }
        return s
    }
}
