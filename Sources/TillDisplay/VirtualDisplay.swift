public import TillESCPOS

/// A pole display in software: the bytes of either command set back to what the glass shows.
/// The demo's sim-display is the real display driver writing to one of these, and tests read
/// the encoder's output back through it. Pure: bytes in, rows out.
public struct VirtualDisplay: Sendable {
    public let commandSet: DisplayCommandSet
    public let rows: Int
    public let columns: Int
    private var glass: [[Character]]
    private var row = 0
    private var column = 0
    private var page: CodePage?
    /// 1 to 4, as `US X n` / `ESC * n` last set it.
    public private(set) var brightness: Int?
    /// Bytes cut by the end of a write (a command split across two writes).
    private var carry: [UInt8] = []

    public init(_ commandSet: DisplayCommandSet, profile: DisplayProfile) {
        self.commandSet = commandSet
        rows = profile.rows
        columns = profile.columns
        glass = Array(repeating: Array(repeating: " ", count: profile.columns), count: profile.rows)
        page = CodePage(named: profile.codePage)
    }

    /// Each row as shown, padded to the width.
    public var lines: [String] { glass.map { String($0) } }

    public mutating func feed(_ input: [UInt8]) {
        let bytes = carry + input
        carry = []
        var i = 0
        while i < bytes.count {
            guard let used = step(bytes, at: i) else {
                carry = Array(bytes[i...])
                return
            }
            i += used
        }
    }

    /// Acts on the command or character at `i`; how many bytes it took, or nil when the input
    /// ends inside it.
    private mutating func step(_ b: [UInt8], at i: Int) -> Int? {
        func arg(_ n: Int) -> UInt8? { i + n < b.count ? b[i + n] : nil }
        switch b[i] {
        case 0x1B:
            guard let kind = arg(1) else { return nil }
            switch kind {
            case 0x40:
                clear()
                return 2
            case 0x74:
                guard let n = arg(2) else { return nil }
                page = CodePage(named: PrinterProfile.generic80.codePages[Int(n)] ?? "CP437")
                return 3
            case 0x2A where commandSet == .cd5220:
                guard let n = arg(2) else { return nil }
                brightness = Int(n)
                return 3
            case 0x6C where commandSet == .cd5220:
                guard let x = arg(2), let y = arg(3) else { return nil }
                moveTo(x: Int(x), y: Int(y))
                return 4
            case 0x51 where commandSet == .cd5220:
                // ESC Q A/B/D text CR: the upper (A, D: marquee) or lower (B) line, replaced whole.
                guard let which = arg(2) else { return nil }
                guard let end = b[(i + 3)...].firstIndex(of: 0x0D) else { return nil }
                let target = which == 0x42 ? 1 : 0
                if target < rows {
                    glass[target] = Array(repeating: " ", count: columns)
                    row = target
                    column = 0
                    for byte in b[(i + 3)..<end] { put(byte) }
                }
                return end + 1 - i
            default:
                return arg(2) == nil ? nil : 3
            }
        case 0x1F where commandSet == .epson:
            guard let kind = arg(1) else { return nil }
            switch kind {
            case 0x24:
                guard let x = arg(2), let y = arg(3) else { return nil }
                moveTo(x: Int(x), y: Int(y))
                return 4
            case 0x58:
                guard let n = arg(2) else { return nil }
                brightness = Int(n)
                return 3
            case 0x01, 0x02, 0x03:
                return 2  // overwrite / vertical / horizontal scroll mode
            default:
                return arg(2) == nil ? nil : 3  // US C n (cursor), US E n (blink), ...
            }
        case 0x0C:
            clear()
            return 1
        case 0x0B:
            (row, column) = (0, 0)
            return 1
        case 0x18:
            glass[row] = Array(repeating: " ", count: columns)
            column = 0
            return 1
        case 0x0D:
            column = 0
            return 1
        case 0x0A:
            row = min(rows - 1, row + 1)
            return 1
        case 0x00..<0x20:
            return 1
        default:
            put(b[i])
            return 1
        }
    }

    private mutating func put(_ byte: UInt8) {
        guard row < rows, column < columns else { return }
        let scalar = page?.scalar(for: byte) ?? (byte < 0x80 ? Unicode.Scalar(byte) : "?")
        glass[row][column] = Character(scalar)
        column += 1
    }

    private mutating func moveTo(x: Int, y: Int) {
        row = min(max(y, 1), rows) - 1
        column = min(max(x, 1), columns) - 1
    }

    private mutating func clear() {
        glass = Array(repeating: Array(repeating: " ", count: columns), count: rows)
        (row, column) = (0, 0)
    }
}
