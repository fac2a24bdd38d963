/// How a scanner that speaks bytes (serial, USB-CDC) marks where one scan ends, and what it
/// wraps around the code: the `[[device]]` options `terminator`, `prefix`, `suffix`, `aim`.
public struct ScanFraming: Sendable, Hashable {
    public enum Terminator: String, Sendable, Hashable, CaseIterable {
        /// CR, LF or CR LF: whichever the scanner sends ends the scan (an LF after a CR is not
        /// an empty second scan). Most scanners ship with CR.
        case enter
        case tab
        /// No terminator: a scan ends when no byte has come for `interByteTimeout`.
        case none
    }

    public var terminator: Terminator
    /// Bytes the scanner is programmed to send before / after each code, removed.
    public var prefix: [UInt8]
    public var suffix: [UInt8]
    /// The scanner sends the AIM symbology identifier (`]E0`, `]C1`, ...) before the code.
    public var aim: Bool
    /// How long the line may stay quiet inside one scan (and, with no terminator, what ends it).
    public var interByteTimeout: Duration
    /// Longer scans are refused (a scanner in a loop, the wrong baud rate producing noise):
    /// memory stays bounded whatever comes down the line.
    public var maxLength: Int

    public init(
        terminator: Terminator = .enter, prefix: [UInt8] = [], suffix: [UInt8] = [], aim: Bool = false,
        interByteTimeout: Duration = .milliseconds(100), maxLength: Int = 4096
    ) {
        self.terminator = terminator
        self.prefix = prefix
        self.suffix = suffix
        self.aim = aim
        self.interByteTimeout = interByteTimeout
        self.maxLength = maxLength
    }
}

/// One scan cut out of the byte stream: the code's own bytes, with the AIM identifier apart.
public struct ScanFrame: Sendable, Hashable {
    public var data: [UInt8]
    public var aim: String?

    public init(data: [UInt8], aim: String?) {
        self.data = data
        self.aim = aim
    }

    /// The code as text: UTF-8 when it is valid UTF-8, else each byte as ISO-8859-1 (what
    /// scanners send for accented characters when not set to UTF-8), never dropped.
    public var text: String {
        if let utf8 = String(validating: data, as: UTF8.self) { return utf8 }
        return String(String.UnicodeScalarView(data.map { Unicode.Scalar($0) }))
    }
}

/// What the framer gives back for the bytes fed in, in order.
public enum ScanFramerOutput: Sendable, Hashable {
    case scan(ScanFrame)
    case problem(ScanFramingProblem)
}

/// What the framer found wrong in the stream; the driver logs it and goes on.
public enum ScanFramingProblem: Sendable, Hashable {
    /// More than `maxLength` bytes without a terminator: discarded up to the next terminator.
    case tooLong(discarded: Int)
    /// A frame that is empty once the prefix, suffix and AIM are removed (a stray Enter).
    case empty
    /// The configured prefix or suffix was not there: the scan is still given, as it came.
    case missingAffix
}

/// Cuts a scanner's byte stream into scans. Pure: bytes in, frames out; the driver feeds it
/// what the transport reads and tells it when the line has been quiet.
public struct ScanFramer: Sendable {
    public let framing: ScanFraming
    private var pending: [UInt8] = []
    private var discarding = false
    private var discarded = 0
    /// The last byte was a CR (so an LF right after it is the same terminator).
    private var afterCR = false

    public init(framing: ScanFraming) {
        self.framing = framing
    }

    /// Whether bytes of an unfinished scan are waiting.
    public var hasPending: Bool { !pending.isEmpty || discarding }

    /// Feeds bytes; returns the scans they complete and any problem seen, in order.
    public mutating func feed(_ bytes: [UInt8]) -> [ScanFramerOutput] {
        var out: [ScanFramerOutput] = []
        for byte in bytes {
            let wasAfterCR = afterCR
            afterCR = false
            if isTerminator(byte) {
                if byte == 0x0A, wasAfterCR { continue }
                afterCR = byte == 0x0D
                out += finish()
                continue
            }
            if discarding {
                discarded += 1
                continue
            }
            if pending.count >= framing.maxLength {
                discarding = true
                discarded = pending.count + 1
                pending.removeAll()
                continue
            }
            pending.append(byte)
        }
        return out
    }

    /// The line has been quiet for the inter-byte timeout: with no terminator that ends the
    /// scan; with one, a partial scan is noise (a scanner unplugged mid-code) and is dropped.
    public mutating func lineWentQuiet() -> [ScanFramerOutput] {
        guard hasPending else { return [] }
        if framing.terminator == .none { return finish() }
        pending.removeAll()
        discarding = false
        discarded = 0
        return []
    }

    private func isTerminator(_ byte: UInt8) -> Bool {
        switch framing.terminator {
        case .enter: byte == 0x0D || byte == 0x0A
        case .tab: byte == 0x09
        case .none: false
        }
    }

    private mutating func finish() -> [ScanFramerOutput] {
        defer {
            pending.removeAll(keepingCapacity: true)
            discarding = false
            discarded = 0
        }
        if discarding { return [.problem(.tooLong(discarded: discarded))] }
        if pending.isEmpty { return [] }  // a bare terminator: nothing was scanned
        var out: [ScanFramerOutput] = []
        var data = pending[...]
        let hasPrefix = framing.prefix.isEmpty || data.starts(with: framing.prefix)
        let hasSuffix = framing.suffix.isEmpty
            || (data.count >= framing.prefix.count + framing.suffix.count && data.suffix(framing.suffix.count).elementsEqual(framing.suffix))
        if hasPrefix, hasSuffix {
            data = data.dropFirst(framing.prefix.count).dropLast(framing.suffix.count)
        } else {
            out.append(.problem(.missingAffix))
        }
        var aim: String? = nil
        if framing.aim, data.count >= 3, data.first == UInt8(ascii: "]") {
            aim = String(decoding: data.prefix(3), as: UTF8.self)
            data = data.dropFirst(3)
        }
        if data.isEmpty { return out + [.problem(.empty)] }
        return out + [.scan(ScanFrame(data: Array(data), aim: aim))]
    }
}
