/// A HID report descriptor (USB HID 1.11, section 6.2.2), read into the fields of each report:
/// where each field sits (report ID, bit offset, size, count) and which usages it carries.
/// Pure: the bytes a device gives (`/sys/class/hidraw/hidrawN/device/report_descriptor`) in,
/// fields out. Only what reading reports needs is kept (no units, no logical ranges).
public struct HIDReportDescriptor: Sendable, Hashable {
    public enum ReportKind: Sendable, Hashable { case input, output, feature }

    /// Where a value sits in a report's data.
    public struct BitRange: Sendable, Hashable {
        public var bitOffset: Int
        public var bitSize: Int
    }

    public struct Field: Sendable, Hashable {
        public var kind: ReportKind
        /// 0 when the device numbers no reports.
        public var reportID: UInt8
        /// From the start of the report's data (after the report ID byte, when there is one).
        public var bitOffset: Int
        public var bitSize: Int
        public var count: Int
        /// Full usages (page << 16 | id), in the order the descriptor gave them; for a variable
        /// field element i has usage i (the last repeats), an array or buffered field has one.
        public var usages: [UInt32]
        public var isConstant: Bool
        public var isVariable: Bool
        /// Buffered Bytes (flag bit 8): the whole field is one byte string.
        public var isBufferedBytes: Bool

        /// The bit offset and size of the element carrying `usage`, when this field has it.
        public func element(_ usage: UInt32) -> BitRange? {
            guard !isConstant, let index = usages.firstIndex(of: usage) else { return nil }
            if isVariable, !isBufferedBytes, count > 1 {
                // Element i carries usages[i]; when the list is shorter the last usage repeats.
                if index == usages.count - 1, usages.count < count {
                    return BitRange(bitOffset: bitOffset + index * bitSize, bitSize: bitSize * (count - index))
                }
                return BitRange(bitOffset: bitOffset + index * bitSize, bitSize: bitSize)
            }
            return BitRange(bitOffset: bitOffset, bitSize: bitSize * count)
        }
    }

    public var fields: [Field]
    /// Whether reports start with a report ID byte (the descriptor declared one).
    public var usesReportIDs: Bool

    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var offset: Int
        public var message: String
        public var description: String { "report descriptor byte \(offset): \(message)" }
    }

    /// A report's length in bytes as a read returns it (with its report ID byte).
    public func reportLength(_ kind: ReportKind, id: UInt8) -> Int {
        let bits = fields.filter { $0.kind == kind && $0.reportID == id }.map { $0.bitOffset + $0.bitSize * $0.count }.max() ?? 0
        return (bits + 7) / 8 + (usesReportIDs ? 1 : 0)
    }

    public static func parse(_ bytes: [UInt8]) throws(Problem) -> HIDReportDescriptor {
        struct Globals {
            var usagePage: UInt32 = 0
            var reportSize = 0
            var reportCount = 0
            var reportID: UInt8 = 0
        }
        var globals = Globals()
        var stack: [Globals] = []
        var usages: [UInt32] = []
        var usageMinimum: UInt32? = nil
        var fields: [Field] = []
        var offsets: [String: Int] = [:]  // "kind/id" → next bit
        var usesReportIDs = false
        var depth = 0
        var index = 0
        while index < bytes.count {
            let prefix = bytes[index]
            if prefix == 0xFE {  // a long item: none is defined, skipped by its length
                guard index + 2 < bytes.count else { throw Problem(offset: index, message: "long item cut short") }
                index += 3 + Int(bytes[index + 1])
                continue
            }
            let size = [0, 1, 2, 4][Int(prefix & 0x03)]
            guard index + size < bytes.count else { throw Problem(offset: index, message: "item 0x\(hex(prefix)) needs \(size) data bytes, \(bytes.count - index - 1) left") }
            var value: UInt32 = 0
            for byte in 0..<size { value |= UInt32(bytes[index + 1 + byte]) << (8 * UInt32(byte)) }
            let type = (prefix >> 2) & 0x03
            let tag = prefix >> 4
            switch (type, tag) {
            case (0, 0x8), (0, 0x9), (0, 0xB):  // Input, Output, Feature
                let kind: ReportKind = tag == 0x8 ? .input : tag == 0x9 ? .output : .feature
                var fieldUsages = usages
                if fieldUsages.isEmpty, let minimum = usageMinimum {
                    fieldUsages = (0..<UInt32(max(globals.reportCount, 1))).map { minimum + $0 }
                }
                let key = "\(kind)/\(globals.reportID)"
                let offset = offsets[key] ?? 0
                guard globals.reportSize * globals.reportCount <= 1 << 16 else {
                    throw Problem(offset: index, message: "a field of \(globals.reportCount) × \(globals.reportSize) bits, more than any report holds")
                }
                fields.append(Field(
                    kind: kind, reportID: globals.reportID, bitOffset: offset, bitSize: globals.reportSize, count: globals.reportCount,
                    usages: fieldUsages, isConstant: value & 0x01 != 0, isVariable: value & 0x02 != 0, isBufferedBytes: value & 0x100 != 0))
                offsets[key] = offset + globals.reportSize * globals.reportCount
                usages = []
                usageMinimum = nil
            case (0, 0xA):  // Collection
                depth += 1
                usages = []
                usageMinimum = nil
            case (0, 0xC):  // End Collection
                guard depth > 0 else { throw Problem(offset: index, message: "End Collection without a Collection") }
                depth -= 1
            case (1, 0x0): globals.usagePage = value
            case (1, 0x7): globals.reportSize = Int(value)
            case (1, 0x8):
                guard value > 0, value <= 255 else { throw Problem(offset: index, message: "Report ID \(value) is outside 1-255") }
                globals.reportID = UInt8(value)
                usesReportIDs = true
            case (1, 0x9): globals.reportCount = Int(value)
            case (1, 0xA): stack.append(globals)  // Push
            case (1, 0xB):  // Pop
                guard let top = stack.popLast() else { throw Problem(offset: index, message: "Pop without Push") }
                globals = top
            case (2, 0x0): usages.append(size == 4 ? value : globals.usagePage << 16 | value)  // Usage
            case (2, 0x1): usageMinimum = size == 4 ? value : globals.usagePage << 16 | value  // Usage Minimum
            default: break  // logical and physical ranges, units, designators, strings, delimiters
            }
            index += 1 + size
        }
        return HIDReportDescriptor(fields: fields, usesReportIDs: usesReportIDs)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
