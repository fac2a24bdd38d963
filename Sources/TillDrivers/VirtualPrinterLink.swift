import Foundation
import Synchronization
import TillESCPOS
import TillTransport

/// A printer in software at the other end of a byte stream: what it is sent goes through the
/// virtual printer (ESC/POS back to text) onto "paper" (a closure: the demo's file), and it
/// answers `DLE EOT` and pushes Automatic Status Back like a real one. The demo printer is the
/// `escpos` driver over this link, so `--demo` runs the real driver's code path.
final class VirtualPrinterLink: ByteStream {
    struct Condition: Equatable, Sendable {
        var online = true
        var coverOpen = false
        var paper: PrinterState.Paper = .ok
        /// How long the printer takes over a job: the first line reaches the paper at once, the
        /// rest this long after (as a real printer is part-way through when the power goes).
        var printSeconds = 0
        /// Unplugged: the link fails as a USB printer pulled out does, and does not open.
        var plugged = true
        /// Pin 3 of the drawer port (the drawer's switch).
        var drawerPinHigh = false
        var canPrint: Bool { online && !coverOpen && paper != .out }
    }

    let endpoint: String
    private let paper: @Sendable (String) throws -> Void
    private let drawerKicked: @Sendable () -> Void
    private struct State {
        var condition = Condition()
        var decoder: VirtualPrinter
        var parser = CommandSplitter()
        var replies: [UInt8] = []
        var automaticStatus = false
        var closed = false
    }
    private let state: Mutex<State>
    /// Readers, writers held by a printer out of paper, and a job part-way: woken by any change.
    private let wake = Broadcast()

    init(endpoint: String, profile: PrinterProfile, drawerKicked: @escaping @Sendable () -> Void = {}, paper: @escaping @Sendable (String) throws -> Void) {
        self.endpoint = endpoint
        self.paper = paper
        self.drawerKicked = drawerKicked
        state = Mutex(State(decoder: VirtualPrinter(profile: profile)))
    }

    var condition: Condition { state.withLock { $0.condition } }

    /// Changes the simulated condition; an ASB block goes out if the driver turned ASB on.
    func set(_ update: (inout Condition) -> Void) {
        state.withLock { state in
            update(&state.condition)
            if state.automaticStatus { state.replies += Self.automaticStatusBlock(state.condition) }
        }
        wakeReaders()
    }

    func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let mark = wake.mark
            let (bytes, closed, condition) = state.withLock { state -> ([UInt8], Bool, Condition) in
                let count = min(maxCount, state.replies.count)
                defer { state.replies.removeFirst(count) }
                return (Array(state.replies.prefix(count)), state.closed, state.condition)
            }
            if closed { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
            if !condition.plugged { throw unplugged(written: 0) }
            if !bytes.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled { return bytes }
            await wake.wait(since: mark, until: deadline)
        }
    }

    func write(_ bytes: [UInt8], timeout: Duration) async throws {
        let mark = wake.mark
        let (canPrint, seconds, plugged) = state.withLock { ($0.condition.canPrint, $0.condition.printSeconds, $0.condition.plugged) }
        guard plugged else { throw unplugged(written: 0) }
        guard canPrint else {
            // Like a printer out of paper: it takes nothing until it is ready again.
            await wake.wait(since: mark, until: ContinuousClock.now + timeout)
            if !state.withLock({ $0.condition.canPrint }) {
                var error = TransportError(.timedOut, endpoint: endpoint, "\(endpoint) took nothing for \(timeout)")
                error.bytesWritten = 0
                throw error
            }
            return try await write(bytes, timeout: timeout)
        }
        if seconds > 0, let firstLine = bytes.firstIndex(of: ESCPOS.lf) {
            try take(Array(bytes[...firstLine]))
            // The rest takes this long, unless the printer is pulled out meanwhile.
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                let mark = wake.mark
                try Task.checkCancellation()
                if !state.withLock({ $0.condition.plugged }) { throw unplugged(written: firstLine + 1) }
                await wake.wait(since: mark, until: deadline)
            }
            try take(Array(bytes[(firstLine + 1)...]))
        } else {
            try take(bytes)
        }
    }

    func drain(timeout: Duration) async throws {}

    private func unplugged(written: Int) -> TransportError {
        var error = TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged or switched off; tilld picks it up again when it is back")
        error.bytesWritten = written
        return error
    }

    func cancelWaits() { wakeReaders() }

    func close() async {
        state.withLock { $0.closed = true }
        wakeReaders()
    }

    /// Answers queries and prints the rest.
    private func take(_ bytes: [UInt8]) throws {
        let (text, kicks) = try state.withLock { state -> (String, Int) in
            if state.closed { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
            var printable: [UInt8] = []
            for command in state.parser.split(bytes) {
                switch command {
                case .query(let n):
                    state.replies.append(Self.reply(n, state.condition))
                case .automaticStatusBack(let mask):
                    state.automaticStatus = mask != 0
                    if mask != 0 { state.replies += Self.automaticStatusBlock(state.condition) }
                case .bytes(let run):
                    printable += run
                }
            }
            let before = state.decoder.lines.count
            state.decoder.feed(printable)
            let new = state.decoder.lines[before...]
            let kicks = new.filter { if case .drawerKick = $0.kind { true } else { false } }.count
            let lines = new.flatMap { $0.rendered(columns: state.decoder.profile.columns) }
            return (lines.map { $0 + "\n" }.joined(), kicks)
        }
        wakeReaders()
        if kicks > 0 { drawerKicked() }
        if !text.isEmpty { try paper(text) }
    }

    static func reply(_ n: UInt8, _ c: Condition) -> UInt8 {
        var byte: UInt8 = 0x12
        switch n {
        case 1:
            if !c.online || !c.canPrint { byte |= 0x08 }
            if c.drawerPinHigh { byte |= 0x04 }
        case 2: if c.coverOpen { byte |= 0x04 }; if c.paper == .out { byte |= 0x20 }
        case 4: if c.paper == .out { byte |= 0x60 } else if c.paper == .nearEnd { byte |= 0x0C }
        default: break
        }
        return byte
    }

    static func automaticStatusBlock(_ c: Condition) -> [UInt8] {
        [0x10 | (c.online ? 0 : 0x08) | (c.coverOpen ? 0x20 : 0) | (c.drawerPinHigh ? 0x04 : 0), 0, c.paper == .out ? 0x0C : c.paper == .nearEnd ? 0x03 : 0, 0]
    }

    private func wakeReaders() { wake.signal() }
}

/// Picks the real-time commands out of a byte stream (which a printer acts on at once, even
/// between the bytes of a line) from what is printed. Bytes that are part of a longer command's
/// data (a picture) are never taken for a query: the splitter knows the lengths of the commands
/// tilld sends.
struct CommandSplitter: Sendable {
    enum Piece: Equatable { case query(UInt8), automaticStatusBack(UInt8), bytes([UInt8]) }

    private var carry: [UInt8] = []

    mutating func split(_ input: [UInt8]) -> [Piece] {
        let bytes = carry + input
        carry = []
        var pieces: [Piece] = []
        var run: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let length = Self.commandLength(bytes, at: i)
            guard let length else {
                carry = Array(bytes[i...])  // a command cut by the write boundary: wait for the rest
                break
            }
            if bytes[i] == ESCPOS.dle, length == 3, bytes[i + 1] == 0x04 {
                if !run.isEmpty { pieces.append(.bytes(run)); run = [] }
                pieces.append(.query(bytes[i + 2]))
            } else if bytes[i] == ESCPOS.gs, length == 3, bytes[i + 1] == 0x61 {
                if !run.isEmpty { pieces.append(.bytes(run)); run = [] }
                pieces.append(.automaticStatusBack(bytes[i + 2]))
            } else {
                run += bytes[i..<i + length]
            }
            i += length
        }
        if !run.isEmpty { pieces.append(.bytes(run)) }
        return pieces
    }

    /// Length of the command (or plain byte) at `i`; nil when the input ends inside it.
    static func commandLength(_ b: [UInt8], at i: Int) -> Int? {
        func need(_ n: Int) -> Int? { i + n <= b.count ? n : nil }
        func arg(_ n: Int) -> Int? { i + n < b.count ? Int(b[i + n]) : nil }
        switch b[i] {
        case ESCPOS.dle:
            guard let kind = arg(1) else { return nil }
            return need(kind == 0x14 ? 5 : 3)
        case ESCPOS.esc:
            guard let kind = arg(1) else { return nil }
            switch kind {
            case 0x40, 0x32: return need(2)
            case 0x70: return need(5)
            case 0x2A:
                guard let m = arg(2), let low = arg(3), let high = arg(4) else { return nil }
                return need(5 + (low | high << 8) * (m >= 32 ? 3 : 1))
            default: return need(3)
            }
        case ESCPOS.gs:
            guard let kind = arg(1) else { return nil }
            switch kind {
            case 0x56:
                guard let m = arg(2) else { return nil }
                return need(m >= 65 ? 4 : 3)
            case 0x6B:
                guard let m = arg(2) else { return nil }
                if m <= 6 {
                    guard let end = b[(i + 3)...].firstIndex(of: 0) else { return nil }
                    return end + 1 - i
                }
                guard let n = arg(3) else { return nil }
                return need(4 + n)
            case 0x28:
                guard let low = arg(3), let high = arg(4) else { return nil }
                return need(5 + (low | high << 8))
            case 0x76:
                guard let xl = arg(4), let xh = arg(5), let yl = arg(6), let yh = arg(7) else { return nil }
                return need(8 + (xl | xh << 8) * (yl | yh << 8))
            case 0x4C, 0x57: return need(4)
            default: return need(3)
            }
        default:
            return 1
        }
    }
}
