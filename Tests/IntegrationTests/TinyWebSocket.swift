import Glibc
import TillCore

/// A WebSocket client as small as a test can have: the handshake and text frames over a
/// blocking TCP socket (RFC 6455: the client masks what it sends; the server does not). Used
/// as a page would use the bridge, and to drive Chromium over its DevTools protocol.
final class TinyWebSocket: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0

    /// Connects and asks for the upgrade; returns the HTTP status line's code and the client
    /// (usable only when the code is 101). `origin` nil: no Origin header (not a web page).
    static func open(port: Int, path: String, origin: String?, timeoutSeconds: Int = 20) throws -> (Int, TinyWebSocket) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else {
            close(fd)
            throw TimedOut(what: "a TCP connection to 127.0.0.1:\(port)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let client = TinyWebSocket(fd: fd)
        let originLine = origin.map { "Origin: \($0)\r\n" } ?? ""
        client.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(originLine)\r\n".utf8))
        var head: [UInt8] = []
        while !(head.count >= 4 && head.suffix(4).elementsEqual("\r\n\r\n".utf8)) {
            guard let byte = client.byte() else { break }
            head.append(byte)
        }
        let status = String(decoding: head, as: UTF8.self).split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, client)
    }

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    private func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            offset += written
        }
    }

    private func byte() -> UInt8? {
        if position == buffer.count {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return nil }
            buffer = Array(chunk[..<count])
            position = 0
        }
        defer { position += 1 }
        return buffer[position]
    }

    private func bytes(_ count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            if position == buffer.count { guard let first = byte() else { return nil }; out.append(first); continue }
            let take = min(count - out.count, buffer.count - position)
            out += buffer[position..<(position + take)]
            position += take
        }
        return out
    }

    func sendText(_ text: String) {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        send(frame)
    }

    /// The next text message, fragments joined (nil at close or after the timeout with nothing).
    func receiveText() -> String? {
        var message: [UInt8] = []
        while true {
            guard let first = byte(), let second = byte() else { return nil }
            var length = Int(second & 0x7F)
            if length == 126 {
                guard let two = bytes(2) else { return nil }
                length = Int(two[0]) << 8 | Int(two[1])
            } else if length == 127 {
                guard let eight = bytes(8) else { return nil }
                length = eight.reduce(0) { $0 << 8 | Int($1) }
            }
            guard let payload = bytes(length) else { return nil }
            switch first & 0x0F {
            case 0x0, 0x1:
                message += payload
                if first & 0x80 != 0 { return String(decoding: message, as: UTF8.self) }
            case 0x8: return nil
            default: continue
            }
        }
    }

    /// Messages until one satisfies `predicate`.
    func receive(until predicate: (JSONValue) -> Bool) throws -> JSONValue {
        while let text = receiveText() {
            let message = try JSONText.decode(text)
            if predicate(message) { return message }
        }
        throw TimedOut(what: "a WebSocket message")
    }
}
