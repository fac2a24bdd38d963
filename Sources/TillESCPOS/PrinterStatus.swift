/// What a printer says about itself, from `DLE EOT` replies or Automatic Status Back blocks
/// (HARDWARE.md "ESC/POS"). Pure: bytes in, a status out.
public struct PrinterState: Sendable, Hashable {
    public enum Paper: String, Sendable, Hashable { case ok, nearEnd = "near_end", out }

    public var online: Bool = true
    public var coverOpen: Bool = false
    public var paper: Paper = .ok
    /// A mechanical, cutter or unrecoverable error, said for a technician; nil when none.
    public var error: String? = nil
    /// Drawer kick connector pin 3; what "open" means depends on the drawer's wiring.
    public var drawerPinHigh: Bool? = nil

    public init(online: Bool = true, coverOpen: Bool = false, paper: Paper = .ok, error: String? = nil, drawerPinHigh: Bool? = nil) {
        self.online = online
        self.coverOpen = coverOpen
        self.paper = paper
        self.error = error
        self.drawerPinHigh = drawerPinHigh
    }

    /// Whether a job may be sent now.
    public var canPrint: Bool { online && !coverOpen && paper != .out && error == nil }

    /// What to tell a person when the printer cannot print, naming what to do.
    public var problem: String? {
        if coverOpen { return "cover open: close the printer cover" }
        if paper == .out { return "paper out: load a new roll" }
        if let error { return error }
        if !online { return "printer is offline: check that it is on and not feeding paper" }
        return nil
    }
}

/// The four `DLE EOT n` queries and how their reply bytes read.
public enum StatusQuery: UInt8, Sendable, Hashable, CaseIterable {
    case printer = 1, offlineCause = 2, errorCause = 3, paper = 4

    public var command: [UInt8] { ESCPOS.statusQuery(rawValue) }

    /// A reply byte has bit 1 and bit 4 set and bits 0 and 7 clear.
    public static func isReply(_ byte: UInt8) -> Bool { byte & 0x93 == 0x12 }

    /// Folds one reply into `state`.
    public func apply(_ byte: UInt8, to state: inout PrinterState) {
        func bit(_ n: UInt8) -> Bool { byte & (1 << n) != 0 }
        switch self {
        case .printer:
            state.drawerPinHigh = bit(2)
            state.online = !bit(3)
        case .offlineCause:
            state.coverOpen = bit(2)
            if bit(5) { state.paper = .out }
        case .errorCause:
            if bit(3) {
                state.error = "auto-cutter error: open the cover, clear the jammed paper and close it"
            } else if bit(5) {
                state.error = "unrecoverable printer error: switch the printer off and on; if it stays, it needs service"
            } else if bit(2) {
                state.error = "mechanical error: check for a paper jam, then switch the printer off and on"
            } else if bit(6) {
                state.error = "print head too hot: it resumes by itself when it has cooled"
            } else {
                state.error = nil
            }
        case .paper:
            state.paper = byte & 0x60 != 0 ? .out : byte & 0x0C != 0 ? .nearEnd : .ok
        }
    }
}

/// Splits what a printer sends back into `DLE EOT` replies (one byte each, in the order the
/// queries were sent) and Automatic Status Back blocks (four bytes, the first with
/// `(b & 0x93) == 0x10`), and keeps the state they add up to. Bytes that are neither (a
/// printer's stray output, noise on a serial line) are skipped and counted, never guessed at.
public struct StatusReader: Sendable {
    public private(set) var state = PrinterState()
    /// Queries sent and not answered yet, oldest first.
    public private(set) var pending: [StatusQuery] = []
    public private(set) var ignoredBytes = 0
    private var block: [UInt8] = []

    public init() {}

    /// Call when a query is sent.
    public mutating func sent(_ query: StatusQuery) { pending.append(query) }

    /// A query went unanswered (timed out): forget it, so later replies are not misread.
    public mutating func forgetPending() { pending.removeAll() }

    /// The last `count` queries marked sent never left (a stalled printer took none of them):
    /// no reply is due for them.
    public mutating func unsent(_ count: Int) { pending.removeLast(min(count, pending.count)) }

    /// Folds received bytes in; returns whether the state changed.
    @discardableResult
    public mutating func receive(_ bytes: some Sequence<UInt8>) -> Bool {
        let before = state
        for byte in bytes {
            if !block.isEmpty {
                block.append(byte)
                if block.count == 4 {
                    applyAutomaticStatus(block)
                    block.removeAll()
                }
            } else if byte & 0x93 == 0x10 {
                block = [byte]
            } else if StatusQuery.isReply(byte), !pending.isEmpty {
                pending.removeFirst().apply(byte, to: &state)
            } else {
                ignoredBytes += 1
            }
        }
        return state != before
    }

    /// ASB: byte 1 drawer (bit 2), offline (3), cover open (5); byte 2 errors; byte 3 paper
    /// near end (bits 0-1) and end (bits 2-3).
    private mutating func applyAutomaticStatus(_ b: [UInt8]) {
        state.drawerPinHigh = b[0] & 0x04 != 0
        state.online = b[0] & 0x08 == 0
        state.coverOpen = b[0] & 0x20 != 0
        state.error = b[1] & 0x08 != 0 ? "auto-cutter error: open the cover, clear the jammed paper and close it"
            : b[1] & 0x20 != 0 ? "unrecoverable printer error: switch the printer off and on; if it stays, it needs service"
            : b[1] & 0x04 != 0 ? "mechanical error: check for a paper jam, then switch the printer off and on"
            : nil
        state.paper = b[2] & 0x0C != 0 ? .out : b[2] & 0x03 != 0 ? .nearEnd : .ok
    }
}
