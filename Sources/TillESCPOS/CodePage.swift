import Foundation

/// A single-byte character table a printer selects with `ESC t n`: bytes below 0x80 are ASCII,
/// the upper half comes from the generated tables (CodePageTables.swift).
public struct CodePage: Sendable, Hashable {
    public let name: String
    private let upper: [UInt16]
    private let bytes: [UInt32: UInt8]

    /// The page by its name in the printer database ("CP858", "ISO_8859-7"); nil for a page
    /// tilld has no table for.
    public init?(named name: String) {
        guard let page = Self.all[name.uppercased()] else { return nil }
        self = page
    }

    private init(name: String, upper: [UInt16]) {
        self.name = name
        self.upper = upper
        var bytes: [UInt32: UInt8] = [:]
        for (offset, scalar) in upper.enumerated() where scalar != 0 && bytes[UInt32(scalar)] == nil {
            bytes[UInt32(scalar)] = UInt8(0x80 + offset)
        }
        self.bytes = bytes
    }

    /// Every page with a table, by name.
    static let all: [String: CodePage] = Dictionary(uniqueKeysWithValues: upperHalves.map { ($0.key, CodePage(name: $0.key, upper: $0.value)) })

    /// The byte for a character of the upper half; nil when the page does not hold it.
    public func byte(for scalar: Unicode.Scalar) -> UInt8? {
        if scalar.value < 0x80 { return UInt8(scalar.value) }
        return bytes[scalar.value]
    }

    /// What a byte prints as on this page; nil for a byte the page leaves undefined.
    public func scalar(for byte: UInt8) -> Unicode.Scalar? {
        if byte < 0x80 { return Unicode.Scalar(byte) }
        let value = upper[Int(byte) - 0x80]
        return value == 0 ? nil : Unicode.Scalar(UInt32(value))
    }
}
