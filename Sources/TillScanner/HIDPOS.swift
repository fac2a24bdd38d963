/// HID POS barcode scanners (USB HID Point of Sale Usage Tables, usage page 0x8C): where a
/// scanner's report puts the code, its AIM identifier and the "more reports follow" flag, read
/// from its report descriptor, because vendors differ (a byte count or not, the identifier as
/// three fields or one, a nested collection or not, other report IDs around it).
public struct HIDPOSLayout: Sendable, Hashable {
    public static let usagePage: UInt32 = 0x8C
    static func usage(_ id: UInt32) -> UInt32 { usagePage << 16 | id }
    /// Decoded Data: the code's bytes.
    static let decodedData = usage(0xFE)
    /// Decode Data Continued: set while more reports of the same scan follow.
    static let continued = usage(0xFF)
    /// Symbology Identifier 1-3: the AIM identifier's three characters ("]", "E", "0").
    static let symbologyIdentifiers = [usage(0xFB), usage(0xFC), usage(0xFD)]
    /// Generic Desktop Byte Count: how many of the data bytes are the code's.
    static let byteCount: UInt32 = 0x0001_003B

    public let reportID: UInt8
    public let usesReportIDs: Bool
    /// The whole report as a read returns it.
    public let reportLength: Int
    let data: HIDReportDescriptor.BitRange
    let count: HIDReportDescriptor.BitRange?
    let symbology: [HIDReportDescriptor.BitRange]
    let more: HIDReportDescriptor.BitRange?
    /// Every input report's length by ID, to split reads that hold several (a replay).
    let inputLengths: [UInt8: Int]

    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    public init(descriptor bytes: [UInt8]) throws(Problem) {
        let descriptor: HIDReportDescriptor
        do {
            descriptor = try HIDReportDescriptor.parse(bytes)
        } catch {
            throw Problem(description: "the scanner's report descriptor does not parse (\(error))")
        }
        try self.init(descriptor: descriptor)
    }

    public init(descriptor: HIDReportDescriptor) throws(Problem) {
        let inputs = descriptor.fields.filter { $0.kind == .input }
        guard let dataField = inputs.first(where: { $0.usages.contains(Self.decodedData) }), let data = dataField.element(Self.decodedData) else {
            throw Problem(description: "not a HID POS scanner: its report descriptor has no Decoded Data (usage page 0x8C, usage 0xFE). A scanner in keyboard mode is an evdev-scanner; or scan the vendor's \"USB HID POS\" programming code")
        }
        let report = inputs.filter { $0.reportID == dataField.reportID }
        func find(_ usage: UInt32) -> HIDReportDescriptor.BitRange? { report.lazy.compactMap { $0.element(usage) }.first }
        reportID = dataField.reportID
        usesReportIDs = descriptor.usesReportIDs
        reportLength = descriptor.reportLength(.input, id: dataField.reportID)
        self.data = data
        count = find(Self.byteCount)
        symbology = Self.symbologyIdentifiers.compactMap(find)
        more = find(Self.continued)
        var lengths: [UInt8: Int] = [:]
        for id in Set(inputs.map(\.reportID)) { lengths[id] = descriptor.reportLength(.input, id: id) }
        inputLengths = lengths
        guard data.bitOffset % 8 == 0, data.bitSize % 8 == 0 else {
            throw Problem(description: "the scanner's Decoded Data field is not byte-aligned (bit \(data.bitOffset), \(data.bitSize) bits); this layout is not supported, please report the scanner's model")
        }
    }

    /// One report's share of a scan.
    public struct Piece: Sendable, Hashable {
        public var data: [UInt8]
        public var aim: String?
        public var continued: Bool

        public init(data: [UInt8], aim: String?, continued: Bool) {
            self.data = data
            self.aim = aim
            self.continued = continued
        }
    }

    /// The piece a report carries; nil for another report (a status or vendor report).
    public func read(_ report: [UInt8]) -> Piece? {
        var body = report[...]
        if usesReportIDs {
            guard body.first == reportID else { return nil }
            body = body.dropFirst()
        }
        let bytes = Array(body)
        let start = data.bitOffset / 8
        let end = min(start + data.bitSize / 8, bytes.count)
        guard start <= end else { return Piece(data: [], aim: nil, continued: false) }
        var code = Array(bytes[start..<end])
        if let count, let length = Self.value(bytes, count) {
            code = Array(code.prefix(Int(length)))
        } else {
            // No byte count: the data is padded with NULs.
            while code.last == 0 { code.removeLast() }
        }
        let identifier = symbology.compactMap { Self.value(bytes, $0) }.map { UInt8(truncatingIfNeeded: $0) }
        // An AIM identifier is "]" then two printable characters; vendors that put their own
        // symbology code here instead are read as no identifier (the data decides).
        let aim = identifier.count == 3 && identifier[0] == 0x5D && identifier.dropFirst().allSatisfy({ (0x21...0x7E).contains($0) })
            ? String(decoding: identifier, as: UTF8.self) : nil
        let continued = more.flatMap { Self.value(bytes, $0) }.map { $0 != 0 } ?? false
        return Piece(data: code, aim: aim, continued: continued)
    }

    /// A read that holds several reports (a replay coalesced them) cut into reports by their
    /// lengths; a real hidraw read is one report and comes back as it is.
    public func split(_ read: [UInt8]) -> [[UInt8]] {
        var reports: [[UInt8]] = []
        var rest = read[...]
        while let first = rest.first {
            // Without report IDs every input report is report 0.
            guard let length = inputLengths[usesReportIDs ? first : 0], length > 0, rest.count > length else {
                reports.append(Array(rest))
                break
            }
            reports.append(Array(rest.prefix(length)))
            rest = rest.dropFirst(length)
        }
        return reports
    }

    /// An unsigned little-endian value of up to 32 bits at a bit position.
    static func value(_ bytes: [UInt8], _ field: HIDReportDescriptor.BitRange) -> UInt32? {
        guard field.bitSize > 0, field.bitSize <= 32, (field.bitOffset + field.bitSize + 7) / 8 <= bytes.count else { return nil }
        var result: UInt32 = 0
        for bit in 0..<field.bitSize {
            let position = field.bitOffset + bit
            if bytes[position / 8] >> UInt8(position % 8) & 1 == 1 { result |= 1 << UInt32(bit) }
        }
        return result
    }
}

/// Puts a scan back together from its reports: a code longer than one report's data field
/// comes as several, each but the last with "continued" set.
public struct HIDPOSAssembler: Sendable {
    public var maxLength: Int
    private var pending: [UInt8] = []
    private var aim: String? = nil
    private var discarding = false

    public init(maxLength: Int = 8192) {
        self.maxLength = maxLength
    }

    public var hasPending: Bool { !pending.isEmpty || discarding }

    public enum Output: Sendable, Hashable {
        case scan(ScanFrame)
        /// A scan longer than `maxLength`: dropped whole.
        case tooLong(discarded: Int)
    }

    public mutating func feed(_ piece: HIDPOSLayout.Piece) -> Output? {
        if aim == nil { aim = piece.aim }
        if !discarding { pending += piece.data }
        if pending.count > maxLength {
            discarding = true
        }
        guard !piece.continued else { return nil }
        defer { reset() }
        if discarding { return .tooLong(discarded: pending.count) }
        guard !pending.isEmpty else { return nil }
        return .scan(ScanFrame(data: pending, aim: aim))
    }

    /// The rest of a scan never came (unplugged mid-scan, a lost report): what was pending is
    /// dropped, and its size returned for the log.
    public mutating func abandon() -> Int {
        defer { reset() }
        return pending.count
    }

    private mutating func reset() {
        pending = []
        aim = nil
        discarding = false
    }
}
