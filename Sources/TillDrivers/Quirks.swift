import Foundation
public import TillCore
public import TillDevices
public import TillScanner
public import TillESCPOS

/// A USB vendor:product pair ("04b8:0e15").
public struct USBID: Sendable, Hashable, CustomStringConvertible {
    public var vendor: UInt16
    public var product: UInt16

    public init(vendor: UInt16, product: UInt16) {
        self.vendor = vendor
        self.product = product
    }

    /// From "04b8:0e15".
    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts.allSatisfy({ $0.count == 4 }),
              let vendor = UInt16(parts[0], radix: 16), let product = UInt16(parts[1], radix: 16) else { return nil }
        self.init(vendor: vendor, product: product)
    }

    public var description: String { String(format: "%04x:%04x", vendor, product) }
}

/// What differs between device models, as data (docs/devices.md, "Quirks"): which devices tilld
/// knows by USB id or model, with role, driver and profile; and the printer profiles (paper,
/// columns, code pages, cutter, QR, raster). Shipped files first, then `/etc/tilld/quirks.d/`:
/// a later file's entry replaces an earlier one with the same key.
public struct Quirks: Sendable {
    public struct Device: Sendable, Hashable {
        public var usb: USBID?
        public var model: String
        public var role: DeviceRole
        public var driver: String
        public var profile: String?
        public var rows: Int?
        public var columns: Int?
        /// How the scanner frames its codes out of the box (serial scanners), when known.
        public var scanFraming: ScanFraming?
        public var notes: String?
        /// What the entry rests on.
        public var source: String
        /// The file it came from.
        public var file: String
    }

    /// A printer profile (TillESCPOS): what the encoder and the driver need of a model.
    public typealias PrinterProfile = TillESCPOS.PrinterProfile

    /// A problem with one quirks file; that file (or entry) is skipped, the others are used.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    public private(set) var devices: [Device] = []
    public private(set) var profiles: [String: PrinterProfile] = [:]
    public private(set) var files: [String] = []

    public init() {}

    public func device(usb: USBID) -> Device? { devices.first { $0.usb == usb } }

    public func device(model: String) -> Device? {
        devices.first { $0.model.caseInsensitiveCompare(model) == .orderedSame }
    }

    public func profile(_ name: String) -> PrinterProfile? { profiles[name] }

    /// Where quirks are read from, in order: the shipped files (`TILLD_QUIRKS_DIR`, else
    /// /usr/share/tilld/quirks when installed, else the source tree's copy for a build run in
    /// place), then the local overrides.
    public static var defaultDirectories: [String] {
        let environment = ProcessInfo.processInfo.environment["TILLD_QUIRKS_DIR"]
        let installed = "/usr/share/tilld/quirks"
        let sourceTree = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Quirks").path
        let shipped = environment ?? (FileManager.default.fileExists(atPath: installed) ? installed : sourceTree)
        return [shipped, "/etc/tilld/quirks.d"]
    }

    /// Reads every `*.json` file of each directory (in name order; a missing directory is
    /// fine). A file that cannot be read or parsed, and an entry with a mistake, are reported
    /// and skipped: the rest still load.
    public static func load(directories: [String] = defaultDirectories) -> (Quirks, [Problem]) {
        var quirks = Quirks()
        var problems: [Problem] = []
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() where name.hasSuffix(".json") {
                let path = directory + "/" + name
                do {
                    let data = try Data(contentsOf: URL(fileURLWithPath: path))
                    let document = try JSONText.decode(String(decoding: data, as: UTF8.self))
                    quirks.merge(document, file: path, problems: &problems)
                } catch {
                    problems.append(Problem(file: path, message: "not read: \(error)"))
                }
            }
        }
        return (quirks, problems)
    }

    mutating func merge(_ document: JSONValue, file: String, problems: inout [Problem]) {
        guard case .object(let root) = document else {
            problems.append(Problem(file: file, message: "must be a JSON object with \"devices\" and/or \"profiles\""))
            return
        }
        if let format = root["format"], format != .int(1) {
            problems.append(Problem(file: file, message: "format \(format) is not one this tilld reads (1)"))
            return
        }
        files.append(file)
        for (index, entry) in (root["devices"]?.arrayValue ?? []).enumerated() {
            switch Self.device(entry, file: file) {
            case .success(let device):
                // Replaces an earlier entry for the same device: by USB id, or by model without one.
                devices.removeAll { existing in
                    if let usb = device.usb { return existing.usb == usb }
                    return existing.usb == nil && existing.model.caseInsensitiveCompare(device.model) == .orderedSame
                }
                devices.append(device)
            case .failure(let message):
                problems.append(Problem(file: file, message: "devices[\(index)]: \(message)"))
            }
        }
        if case .object(let table)? = root["profiles"] {
            for (name, value) in table {
                switch Self.profile(name, value, file: file) {
                case .success(let profile): profiles[name] = profile
                case .failure(let message): problems.append(Problem(file: file, message: "profiles.\(name): \(message)"))
                }
            }
        }
    }

    /// What is wrong with one entry (the entry is skipped).
    struct EntryProblem: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    private static func device(_ value: JSONValue, file: String) -> Result<Device, EntryProblem> {
        guard case .object(let fields) = value else { return .failure(EntryProblem("must be an object")) }
        guard let model = fields["model"]?.stringValue, !model.isEmpty else { return .failure(EntryProblem("needs a model")) }
        guard let roleText = fields["role"]?.stringValue, let role = DeviceRole(rawValue: roleText) else {
            return .failure(EntryProblem("\(model): role must be printer, scanner, drawer or display"))
        }
        guard let driver = fields["driver"]?.stringValue, BuiltinDrivers.registry.descriptor(driver) != nil else {
            return .failure(EntryProblem("\(model): driver must be one tilld knows (\(BuiltinDrivers.registry.drivers.map(\.name).joined(separator: ", ")))"))
        }
        guard let source = fields["source"]?.stringValue, !source.isEmpty else {
            return .failure(EntryProblem("\(model): needs a source (what the entry rests on)"))
        }
        var usb: USBID? = nil
        if let text = fields["usb"] {
            guard let id = text.stringValue.flatMap(USBID.init) else { return .failure(EntryProblem("\(model): usb must be \"vvvv:pppp\" in hex")) }
            usb = id
        }
        let display = fields["display"]
        var framing: ScanFraming? = nil
        if case .object(let scanner)? = fields["scanner"] {
            var value = ScanFraming()
            if let text = scanner["terminator"]?.stringValue {
                guard let terminator = ScanFraming.Terminator(rawValue: text) else {
                    return .failure(EntryProblem("\(model): scanner.terminator must be enter, tab or none"))
                }
                value.terminator = terminator
            }
            if case .bool(let aim)? = scanner["aim"] { value.aim = aim }
            if let prefix = scanner["prefix"]?.stringValue { value.prefix = Array(prefix.utf8) }
            if let suffix = scanner["suffix"]?.stringValue { value.suffix = Array(suffix.utf8) }
            framing = value
        }
        return .success(Device(
            usb: usb, model: model, role: role, driver: driver, profile: fields["profile"]?.stringValue,
            rows: display?["rows"]?.intValue.map(Int.init), columns: display?["columns"]?.intValue.map(Int.init),
            scanFraming: framing, notes: fields["notes"]?.stringValue, source: source, file: file))
    }

    private static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let number)?: Double(number)
        case .double(let number)?: number
        default: nil
        }
    }

    private static func profile(_ name: String, _ value: JSONValue, file: String) -> Result<PrinterProfile, EntryProblem> {
        guard case .object(let fields) = value else { return .failure(EntryProblem("must be an object")) }
        var fonts: [PrinterProfile.Font] = []
        for font in fields["fonts"]?.arrayValue ?? [] {
            guard let columns = font["columns"]?.intValue, columns > 0 else { return .failure(EntryProblem("each font needs columns")) }
            fonts.append(PrinterProfile.Font(name: font["name"]?.stringValue ?? "Font \(fonts.count)", columns: Int(columns)))
        }
        var pages: [Int: String] = [:]
        if case .object(let table)? = fields["code_pages"] {
            for (number, page) in table {
                guard let index = Int(number), (0...255).contains(index), let pageName = page.stringValue else {
                    return .failure(EntryProblem("code_pages maps ESC t numbers (0-255) to names"))
                }
                pages[index] = pageName
            }
        }
        func flag(_ key: String) -> Bool { fields[key] == .bool(true) }
        // The printer database says whether `GS v 0` works ("raster"); without it, the 24-dot
        // column command `ESC *` that nearly every ESC/POS printer has. "image": a local
        // override (raster, bit-image, none).
        var image: PrinterProfile.ImageCommand = flag("raster") ? .raster : .bitImage
        if let override = fields["image"]?.stringValue {
            guard let chosen = PrinterProfile.ImageCommand(rawValue: override) else {
                return .failure(EntryProblem("image must be raster, bit-image or none"))
            }
            image = chosen
        }
        return .success(PrinterProfile(
            name: name, vendor: fields["vendor"]?.stringValue ?? "", model: fields["model"]?.stringValue ?? name,
            paperMillimetres: Self.number(fields["paper_mm"]), dots: fields["dots"]?.intValue.map(Int.init), dpi: fields["dpi"]?.intValue.map(Int.init),
            fonts: fonts.isEmpty ? [.init(name: "Font A", columns: 42)] : fonts, codePages: pages.isEmpty ? [0: "CP437"] : pages,
            fullCut: fields["cut"]?["full"] == .bool(true), partialCut: fields["cut"]?["partial"] == .bool(true),
            qr: flag("qr"), imageCommand: image, barcodes: flag("barcodes"), drawerPulse: flag("drawer_pulse"),
            drawerPins: (fields["drawer_pins"]?.arrayValue ?? [.int(2), .int(5)]).compactMap { $0.intValue.map(Int.init) },
            drawerPulses: fields["drawer_pulses"]?.intValue.map(Int.init) ?? 1,
            // Star printers in Star mode do not answer DLE EOT (HARDWARE.md 6).
            realTimeStatus: fields["status"].map { $0 == .bool(true) } ?? !flag("star_commands"),
            bufferBytes: fields["buffer_bytes"]?.intValue.map(Int.init),
            rasterBandRows: fields["raster_band_rows"]?.intValue.map(Int.init) ?? 255, file: file))
    }
}
