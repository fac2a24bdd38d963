/// A barcode as `GS k` (format B: `GS k m n data`) prints it, with the data checked for what
/// the symbology can hold and its width worked out, so a code that cannot be printed is
/// refused when the job is submitted, not found out at the printer.
public struct Barcode: Sendable, Hashable {
    public enum Symbology: String, Sendable, Hashable, CaseIterable {
        case ean13, ean8, upca, upce, code39, code93, code128, itf, codabar

        /// `m` of `GS k` format B.
        var command: UInt8 {
            switch self {
            case .upca: 65
            case .upce: 66
            case .ean13: 67
            case .ean8: 68
            case .code39: 69
            case .itf: 70
            case .codabar: 71
            case .code93: 72
            case .code128: 73
            }
        }
    }

    /// Why data cannot be a given barcode, said for the `bad_request` of `print`.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    public let symbology: Symbology
    /// The text printed under the bars.
    public let data: String
    /// What follows `GS k m n`.
    public let payload: [UInt8]
    /// Width in modules (narrowest bars), quiet zones included.
    public let modules: Int

    public init(_ symbology: Symbology, data: String) throws(Invalid) {
        self.symbology = symbology
        self.data = data
        let bytes = Array(data.utf8)
        let digits = bytes.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        func need(_ condition: Bool, _ message: String) throws(Invalid) {
            if !condition { throw Invalid(description: message) }
        }
        switch symbology {
        case .ean13, .ean8, .upca:
            let length = symbology == .ean13 ? 13 : symbology == .ean8 ? 8 : 12
            try need(digits && (bytes.count == length || bytes.count == length - 1),
                     "\(symbology.rawValue) takes \(length - 1) digits, or \(length) with the check digit")
            if bytes.count == length {
                try need(Self.checkDigit(bytes.dropLast()) == bytes.last! - 0x30,
                         "the check digit of \(data) is wrong: it should be \(Self.checkDigit(bytes.dropLast()))")
            }
            payload = bytes
            modules = symbology == .ean8 ? 67 + 14 : 95 + 18
        case .upce:
            try need(digits && (6...8).contains(bytes.count) && (bytes.count == 6 || bytes.first == 0x30 || bytes.first == 0x31),
                     "upce takes 6 digits, or 7/8 with the number system (0 or 1) and check digit")
            payload = bytes
            modules = 51 + 18
        case .code39:
            try need(!bytes.isEmpty && bytes.allSatisfy { Self.code39Characters.contains($0) },
                     "code39 holds digits, capital letters, space and - . $ / + %")
            payload = bytes
            modules = (bytes.count + 2) * 16 + 20
        case .code93:
            try need(!bytes.isEmpty && bytes.allSatisfy { $0 < 0x80 }, "code93 holds ASCII only")
            payload = bytes
            modules = (bytes.count + 4) * 9 + 1 + 20
        case .itf:
            try need(digits && bytes.count >= 2 && bytes.count % 2 == 0, "itf holds an even number of digits (add a leading 0)")
            payload = bytes
            modules = bytes.count / 2 * 18 + 10 + 20
        case .codabar:
            let starts: Set<UInt8> = Set("ABCDabcd".utf8)
            try need(bytes.count >= 3 && starts.contains(bytes.first!) && starts.contains(bytes.last!)
                     && bytes.dropFirst().dropLast().allSatisfy { Set("0123456789-$:/.+".utf8).contains($0) },
                     "codabar starts and ends with A, B, C or D and holds digits and - $ : / . + between")
            payload = bytes
            modules = bytes.count * 12 + 20
        case .code128:
            try need(!bytes.isEmpty && bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "code128 holds printable ASCII")
            let encoded = Self.code128(bytes)
            payload = encoded.payload
            // Start, symbols, check (11 modules each), stop (13), quiet zones (2 × 10).
            modules = (encoded.symbols + 2) * 11 + 13 + 20
        }
        try need(payload.count <= 255, "is too long for a barcode (at most 255 bytes after encoding); use a QR code")
    }

    /// `GS k m n data`.
    public var command: [UInt8] { [ESCPOS.gs, 0x6B, symbology.command, UInt8(payload.count)] + payload }

    /// The module width (`GS w`) to print at: 3 dots where the code fits, else 2 (the narrowest
    /// that scans reliably on a 203 dpi printer); nil when it does not fit `dots` even at 2.
    public func moduleWidth(fitting dots: Int) -> Int? {
        [3, 2].first { $0 * modules <= dots }
    }

    /// GTIN check digit (mod 10, weights 3 and 1 from the right).
    static func checkDigit(_ digits: some Collection<UInt8>) -> UInt8 {
        var sum = 0
        for (index, digit) in digits.reversed().enumerated() {
            sum += Int(digit - 0x30) * (index % 2 == 0 ? 3 : 1)
        }
        return UInt8((10 - sum % 10) % 10)
    }

    static let code39Characters: Set<UInt8> = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ -.$/+%".utf8)

    /// Code 128 for `GS k 73`: the data with code-set selections (`{B`, `{C`, `{{` for a brace),
    /// using set C (two digits per symbol) for runs of four digits or more, and B otherwise.
    /// Returns the payload and the number of symbols printed (for the width).
    static func code128(_ bytes: [UInt8]) -> (payload: [UInt8], symbols: Int) {
        var payload: [UInt8] = []
        var symbols = 0
        var set: UInt8 = 0
        var index = 0
        func digitRun(from start: Int) -> Int {
            var end = start
            while end < bytes.count, bytes[end] >= 0x30, bytes[end] <= 0x39 { end += 1 }
            return end - start
        }
        while index < bytes.count {
            let run = digitRun(from: index)
            // Set C pays off for 4+ digits (2+ at the very start or end would too, but never mind).
            if run >= 4 || (run >= 2 && run == bytes.count - index && set == 0x43) {
                let even = run - run % 2
                if set != 0x43 {
                    payload += [0x7B, 0x43]
                    if set != 0 { symbols += 1 }
                    set = 0x43
                }
                for pair in stride(from: index, to: index + even, by: 2) {
                    payload.append((bytes[pair] - 0x30) * 10 + (bytes[pair + 1] - 0x30))
                    symbols += 1
                }
                index += even
                continue
            }
            if set != 0x42 {
                payload += [0x7B, 0x42]
                if set != 0 { symbols += 1 }
                set = 0x42
            }
            if bytes[index] == 0x7B { payload.append(0x7B) }  // "{" is sent as "{{"
            payload.append(bytes[index])
            symbols += 1
            index += 1
        }
        return (payload, symbols)
    }
}
