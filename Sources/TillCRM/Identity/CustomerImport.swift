public import Foundation
import TillCore

/// `till-crm import FILE.csv`: an old customer list run row by row, in `captured_at` order,
/// through the same `Identification` the till uses, so an import never creates a duplicate
/// the live path would not. A bad row is reported with its line and skipped whole; a row
/// imported before (same source and record id) is skipped, so importing twice changes nothing.
public struct CustomerImport: Sendable {
    /// The fields a row can carry, by their default column names.
    public enum Field: String, Sendable, CaseIterable {
        case recordID = "record_id", capturedAt = "captured_at", givenName = "given_name", familyName = "family_name"
        case name, email, phone, loyaltyCard = "loyalty_card", postcode
    }

    public struct BadRow: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public struct Report: Sendable {
        public var rows = 0
        public var created = 0
        public var attached = 0
        public var alreadyImported = 0
        public var merged = 0
        public var queued = 0
        public var bad: [BadRow] = []
        /// record_id → the customer it belongs to after the whole import, in file order.
        public var clusters: [(record: String, customer: String)] = []
        public var dryRun = false
        /// Seconds spent reading and normalising the rows, and identifying them (with the writes).
        public var readSeconds = 0.0
        public var resolveSeconds = 0.0
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public var normalizer: IdentifierNormalizer
    public var identification: Identification
    /// File column for each field; defaults to the field's own name.
    public var columns: [Field: String]

    public init(normalizer: IdentifierNormalizer, identification: Identification, columns: [Field: String] = [:]) {
        self.normalizer = normalizer
        self.identification = identification
        self.columns = columns
    }

    /// A parsed row, ready to identify.
    struct Row: Sendable {
        var line: Int
        var record: String
        var capturedMs: Int64
        var input: IdentityInput
        var prepared: Identification.Prepared
    }

    /// A row that passed the checks needing the whole file, with its date read.
    struct Pending: Sendable {
        var record: CSV.Record
        var id: String
        var capturedMs: Int64
    }

    /// Reads the file: the checks that need all of it (the header, a record id seen twice)
    /// and each row's date, so the rows can be put in the order the till would have met them
    /// (oldest first; file order among equals). Bad rows go to `bad`. Throws only for a file
    /// that cannot be imported at all (empty, no record_id column, a mapped column missing).
    func read(_ text: String, nowMs: Int64) throws -> (rows: [Pending], bad: [BadRow], position: [Field: Int]) {
        var records = CSV.records(text)
        guard !records.isEmpty else { throw Invalid(description: "the file is empty; the first line names the columns (record_id,captured_at,given_name,...)") }
        let header = records.removeFirst().fields.map { $0.trimmingWhitespace() }
        var position: [Field: Int] = [:]
        for field in Field.allCases {
            let column = columns[field] ?? field.rawValue
            if let index = header.firstIndex(where: { $0.caseInsensitiveCompare(column) == .orderedSame }) {
                position[field] = index
            } else if columns[field] != nil {
                throw Invalid(description: "no column \"\(column)\" (mapped to \(field.rawValue)); the header has: \(header.joined(separator: ", "))")
            }
        }
        guard let idColumn = position[.recordID] else {
            throw Invalid(description: "no record_id column (the file's own id for each row, so an import run twice imports each row once); map one with --column record_id=NAME")
        }
        guard [Field.email, .phone, .loyaltyCard, .givenName, .familyName, .name].contains(where: { position[$0] != nil }) else {
            throw Invalid(description: "no column to identify people by (email, phone, loyalty_card or names); the header has: \(header.joined(separator: ", "))")
        }
        var bad: [BadRow] = []
        var seen: [String: Int] = [:]
        var rows: [Pending] = []
        for record in records {
            if record.fields.allSatisfy({ $0.trimmingWhitespace().isEmpty }) { continue }
            guard record.fields.count == header.count else {
                bad.append(BadRow(line: record.line, reason: "\(record.fields.count) fields where the header has \(header.count) (a stray comma or quote?)"))
                continue
            }
            let id = record.fields[idColumn].trimmingWhitespace()
            guard !id.isEmpty else {
                bad.append(BadRow(line: record.line, reason: "no record_id"))
                continue
            }
            if let first = seen[id] {
                bad.append(BadRow(line: record.line, reason: "record_id \(id) repeats line \(first)"))
                continue
            }
            seen[id] = record.line
            var captured = nowMs
            if let column = position[.capturedAt], case let text = record.fields[column].trimmingWhitespace(), !text.isEmpty {
                guard let date = Self.date(text) else {
                    bad.append(BadRow(line: record.line, reason: "captured_at \"\(text)\" is not a date (2024-03-01 or 2024-03-01T09:30:00Z)"))
                    continue
                }
                captured = date.milliseconds
            }
            rows.append(Pending(record: record, id: id, capturedMs: captured))
        }
        rows.sort { ($0.capturedMs, $0.record.line) < ($1.capturedMs, $1.record.line) }
        return (rows, bad, position)
    }

    /// One row normalised: what identification takes, or why it cannot be.
    func normalise(_ row: Pending, position: [Field: Int]) -> Result<Row, BadRow> {
        let record = row.record
        func value(_ field: Field) -> String? {
            guard let index = position[field], index < record.fields.count else { return nil }
            let text = record.fields[index].trimmingWhitespace()
            return text.isEmpty ? nil : text
        }
        do {
            var identifiers: [CustomerIdentifier] = []
            if let card = value(.loyaltyCard) { identifiers.append(try normalizer.loyaltyCard(card)) }
            if let email = value(.email) { identifiers.append(try normalizer.email(email)) }
            if let phone = value(.phone) { identifiers.append(try normalizer.phone(phone, postcode: value(.postcode), email: value(.email))) }
            let input = IdentityInput(
                identifiers: identifiers, name: value(.name), givenName: value(.givenName), familyName: value(.familyName),
                postcode: value(.postcode))
            guard !identifiers.isEmpty || (input.givenName != nil && input.familyName != nil) else {
                return .failure(BadRow(line: record.line, reason: "nothing to identify the person by (an email, phone, card, or a given and a family name)"))
            }
            return .success(Row(line: record.line, record: row.id, capturedMs: row.capturedMs, input: input, prepared: .init(input, atMs: row.capturedMs)))
        } catch {
            return .failure(BadRow(line: record.line, reason: "\(error)"))
        }
    }

    /// RFC 3339, or a date or "date time" without a zone (read as UTC), as spreadsheets write them.
    static func date(_ text: String) -> Date? {
        if let date = Timestamp.parse(text) { return date }
        let utf8 = text.utf8.count
        if utf8 == 10 { return Timestamp.parse(text + "T00:00:00Z") }
        if utf8 == 19 || utf8 == 16 {
            let iso = text.replacingOccurrences(of: " ", with: "T") + (utf8 == 16 ? ":00Z" : "Z")
            return Timestamp.parse(iso)
        }
        return nil
    }

    struct DryRun: Error { var report: Report }

    /// Imports `text` (the file's contents) under `source`. With `dryRun`, everything runs
    /// in one transaction that is rolled back: the report (and its clusters) is what the import
    /// would do, and the store is unchanged.
    public func run(_ text: String, source: String, dryRun: Bool, in store: any CRMStore, now: Date = Date()) async throws -> Report {
        let started = ContinuousClock.now
        let (pending, unreadable, position) = try read(text, nowMs: now.milliseconds)
        let read = ContinuousClock.now
        // Rows are normalised on another core while identification goes (reading a phone
        // number is as slow as identifying its row); identification takes them in order.
        let importer = self
        let rows = Pipeline(pending) { importer.normalise($0, position: position) }
        let identification = self.identification
        do {
            var report = try await store.write { transaction in
                // The same customers come up as candidates row after row: read each once.
                let store = MemoizingTransaction(transaction)
                var report = Report()
                report.rows = pending.count + unreadable.count
                report.dryRun = dryRun
                var bad = unreadable
                var written: [(line: Int, record: String, customer: String)] = []
                let imported = try store.importedRecords(source: source)
                for index in 0..<rows.count {
                    let row: Row
                    switch rows[index] {
                    case .success(let normalised): row = normalised
                    case .failure(let problem):
                        bad.append(problem)
                        continue
                    }
                    if let known = imported[row.record] {
                        report.alreadyImported += 1
                        written.append((row.line, row.record, known))
                        continue
                    }
                    let outcome = try identification.identify(row.input, atMs: row.capturedMs, sourceSeq: nil, prepared: row.prepared, in: store)
                    if outcome.created { report.created += 1 } else { report.attached += 1 }
                    report.merged += outcome.merged.count
                    report.queued += outcome.queued.count
                    try store.recordImport(source: source, record: row.record, customer: outcome.record, atMs: now.milliseconds)
                    written.append((row.line, row.record, outcome.record))
                }
                report.bad = bad.sorted { $0.line < $1.line }
                report.clusters = try written.sorted { $0.line < $1.line }.map { ($0.record, try store.root(of: $0.customer)) }
                try store.flush()
                if dryRun { throw DryRun(report: report) }
                return report
            }
            report.readSeconds = Self.seconds(read - started)
            report.resolveSeconds = Self.seconds(ContinuousClock.now - read)
            return report
        } catch var rolledBack as DryRun {
            rolledBack.report.readSeconds = Self.seconds(read - started)
            rolledBack.report.resolveSeconds = Self.seconds(ContinuousClock.now - read)
            return rolledBack.report
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// Work done in order on a thread of its own, ahead of the one taking the results: a
/// producer fills a chunk at a time and signals it; `subscript` waits for the chunk it reads.
/// Results are taken in order, each once.
final class Pipeline<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    let count: Int
    private static var chunk: Int { 256 }
    private let results: UnsafeMutableBufferPointer<Output?>
    private let ready: [DispatchSemaphore]
    private var readyChunks = 0  // read by the consumer only

    init(_ inputs: [Input], _ work: @escaping @Sendable (Input) -> Output) {
        count = inputs.count
        results = .allocate(capacity: inputs.count)
        results.initialize(repeating: nil)
        ready = (0..<((inputs.count + Self.chunk - 1) / Self.chunk)).map { _ in DispatchSemaphore(value: 0) }
        // The closure holds the pipeline until the last chunk is done, so the buffer outlives it.
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            for (number, signal) in ready.enumerated() {
                for index in (number * Self.chunk)..<min(count, (number + 1) * Self.chunk) {
                    results[index] = work(inputs[index])
                }
                signal.signal()
            }
        }
    }

    subscript(index: Int) -> Output {
        while index / Self.chunk >= readyChunks {
            ready[readyChunks].wait()
            readyChunks += 1
        }
        return results[index]!
    }

    deinit {
        results.deinitialize()
        results.deallocate()
    }
}

/// RFC 4180 CSV: quoted fields with doubled quotes, commas and line breaks inside quotes,
/// CRLF or LF. Each record carries the line it starts on, for error messages.
enum CSV {
    struct Record {
        var line: Int
        var fields: [String]
    }

    static func records(_ text: String) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var line = 1
        var recordLine = 1
        var bytes = Array(text.utf8)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // a BOM from a spreadsheet
        var index = 0
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        func endRecord() {
            endField()
            records.append(Record(line: recordLine, fields: fields))
            fields.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if byte == UInt8(ascii: "\n") { line += 1 }
                    field.append(byte)
                }
            } else {
                switch byte {
                case UInt8(ascii: "\"") where field.isEmpty: quoted = true
                case UInt8(ascii: ","): endField()
                case UInt8(ascii: "\r") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n"): break
                case UInt8(ascii: "\n"):
                    endRecord()
                    line += 1
                    recordLine = line
                default: field.append(byte)
                }
            }
            index += 1
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
