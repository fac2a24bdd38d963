import ArgumentParser
import Foundation
import Synchronization
import TillClient
import TillESCPOS
import TillImaging
import TillWebPairing
import TillCore

@main
struct TillCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tillctl",
        abstract: "Diagnose and drive the till: what is plugged in, why the printer does not print, live events.",
        version: "0.1.0",
        subcommands: [
            Watch.self, Devices.self, Status.self, Publish.self, Simulate.self, Print.self, Drawer.self, Display.self,
            Doctor.self, Web.self,
        ]
    )
}

/// Flags every subcommand takes.
struct Connection: ParsableArguments {
    @Option(help: "tilld's socket (default: $TILLD_SOCKET, else /run/tilld/tilld.sock).")
    var socket: String?

    @Flag(help: "Machine output: one JSON object per line.")
    var json = false

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["TILLD_SOCKET"] ?? "/run/tilld/tilld.sock"
    }

    /// Connects, runs `body`, and turns every failure into a one-line reason and exit status 1.
    func run<R: Sendable>(_ body: @Sendable (TillConnection) async throws -> R) async throws -> R {
        do {
            return try await TillConnection.with(socket: socketPath, body)
        } catch let error as WireError {
            fail(error.code == .forbidden ? "forbidden: \(error.message)" : "\(error.code.rawValue): \(error.message)")
        } catch let error as ConnectError {
            fail(error.description)
        } catch let error as ExitCode {
            throw error
        } catch {
            fail("\(error)")
        }
    }

    func emit(_ value: JSONValue) {
        print(JSONText.encode(value))
    }
}

func fail(_ reason: String) -> Never {
    FileHandle.standardError.write(Data(("tillctl: " + reason + "\n").utf8))
    exit(1)
}

func parseJSONArgument(_ text: String, what: String) -> JSONValue {
    do {
        return try JSONText.decode(text)
    } catch {
        fail("\(what) is not valid JSON: \(error) in \(text.prefix(60))")
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show events as they happen (and, with --since, those journaled after SEQ).")
    @OptionGroup var connection: Connection
    @Argument(help: "Topic globs, e.g. 'scanner.*' 'sale.*' (default: everything).")
    var topics: [String] = []
    @Option(help: "Replay journaled events after this seq first.")
    var since: Int64?
    @Option(help: "Stop after this many events (for scripts).")
    var count: Int?

    func run() async throws {
        var since = self.since
        var seen = 0
        var connectedOnce = false
        var delay = 0.5
        let topics = self.topics.isEmpty ? ["*"] : self.topics
        // A lagged watcher, or one whose tilld restarted, reconnects from the last event it
        // showed: nothing shown twice, nothing skipped (as examples/tilld_client.py does).
        while true {
            let outcome: WatchEnd
            do {
                outcome = try await TillConnection.with(socket: connection.socketPath) { [since, seen] conn in
                    var params: [String: JSONValue] = ["topics": .array(topics.map(JSONValue.string))]
                    // Resuming: everything after the last event shown. First time: from now, or --since.
                    if let since { params["since"] = .int(since) }
                    try await conn.request("subscribe", params)
                    var shown = seen
                    var last = since ?? conn.hello.seq
                    do {
                        for try await line in conn.events {
                            switch line {
                            case .event(let event):
                                last = event.seq
                                // Unbuffered, so `tillctl watch | grep` shows each event as it happens.
                                let text = connection.json ? event.wireLine() : EventFormatter.line(event)
                                FileHandle.standardOutput.write(Data((text + "\n").utf8))
                                shown += 1
                                if let count, shown >= count { return .done }
                            case .lagged(let seq):
                                note("fell behind at seq \(seq); reconnecting")
                                return .resume(after: seq, shown: shown)
                            default: break
                            }
                        }
                    } catch {}
                    return .resume(after: last, shown: shown)
                }
            } catch let error as WireError where error.code == .journalTruncated {
                // Retention removed what this watcher had not seen yet: say so, go on from what is held.
                let oldest = error.details?["oldest"]?.intValue ?? 1
                note("events after \(since ?? 0) up to \(oldest - 1) are no longer in the journal; showing from \(oldest)")
                since = oldest - 1
                continue
            } catch let error as WireError {
                fail(error.code == .forbidden ? "forbidden: \(error.message)" : "\(error.code.rawValue): \(error.message)")
            } catch {
                // Not there at all the first time: a wrong socket or a stopped tilld, say so and stop.
                guard connectedOnce else { fail((error as? ConnectError)?.description ?? "\(error)") }
                note("tilld is not reachable (\((error as? ConnectError)?.description ?? "\(error)")); retrying in \(delay) s")
                try await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 5)
                continue
            }
            connectedOnce = true
            switch outcome {
            case .done: return
            case .resume(let seq, let shown):
                if shown == seen && seq == since { delay = min(delay * 2, 5) } else { delay = 0.5 }
                note("connection to tilld ended; resuming after seq \(seq)")
                since = seq
                seen = shown
                try await Task.sleep(for: .seconds(0.2))
            }
        }
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data("tillctl: \(text)\n".utf8))
    }

    enum WatchEnd: Sendable {
        case done
        /// Reconnect and subscribe with `since` = this seq.
        case resume(after: Int64, shown: Int)
    }
}

/// One readable line per event: time, seq, topic, device, then the fields that matter.
enum EventFormatter {
    static func line(_ event: Event) -> String {
        let time = Timestamp.format(event.time).dropFirst(11).prefix(12)
        var parts = ["\(time)", "#\(event.seq)", event.topic]
        if let device = event.device { parts.append("[\(device)]") }
        if let data = event.data.objectValue {
            for key in data.keys.sorted() where key != "raw" {
                parts.append("\(key)=\(short(data[key]!))")
            }
        }
        return parts.joined(separator: " ")
    }

    static func short(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s.contains(" ") ? "\"\(s)\"" : s
        case .null: return "-"
        default:
            let text = JSONText.encode(value)
            return text.count > 60 ? String(text.prefix(57)) + "..." : text
        }
    }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List devices: name, role, driver, transport, state.")
    @OptionGroup var connection: Connection

    func run() async throws {
        let result = try await connection.run { try await $0.request("devices") }
        let devices = result["devices"]?.arrayValue ?? []
        if connection.json {
            devices.forEach(connection.emit)
            for device in result["seen"]?.arrayValue ?? [] {
                var line = device.objectValue ?? [:]
                line["seen"] = true
                connection.emit(.object(line))
            }
            return
        }
        let columns = ["name", "role", "driver", "transport", "state", "reason"]
        var rows = [columns.map { $0.uppercased() }]
        for device in devices {
            rows.append(columns.map { device[$0]?.stringValue ?? "" })
        }
        printTable(rows)
        if devices.isEmpty { print("no devices: add [[device]] entries to the config, or start tilld with --demo") }
        // Everything plugged in (USB, serial, input, hidraw), and why each was or was not claimed.
        let seen = result["seen"]?.arrayValue ?? []
        guard !seen.isEmpty else { return }
        print("")
        print("plugged in:")
        var plugged = [["NODE", "KIND", "IDENTITY", "MODEL", "CLAIMED BY", "WHY"]]
        for device in seen {
            plugged.append([
                device["node"]?.stringValue ?? "-", device["kind"]?.stringValue ?? "", device["identity"]?.stringValue ?? "",
                device["model"]?.stringValue ?? "-", device["claimed_by"]?.stringValue ?? "-", device["why"]?.stringValue ?? "",
            ])
        }
        printTable(plugged)
    }
}

func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    let widths = first.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Version, uptime, seq, journal span and device states.")
    @OptionGroup var connection: Connection

    func run() async throws {
        let status = try await connection.run { try await $0.request("status") }
        if connection.json {
            connection.emit(status)
            if status["degraded"]?.boolValue == true { throw ExitCode(1) }
            return
        }
        print("tilld \(status["version"]?.stringValue ?? "?")\(status["demo"]?.boolValue == true ? " (demo)" : ""), up \(status["uptime_seconds"]?.intValue ?? 0) s")
        print("seq \(status["seq"]?.intValue ?? 0); journal holds \(status["journal"]?["oldest"]?.intValue.map(String.init) ?? "-")...\(status["journal"]?["latest"]?.intValue ?? 0)")
        print("subscribers \(status["subscribers"]?.intValue ?? 0); print jobs waiting \(status["print_queue"]?.intValue.map(String.init) ?? "?")")
        let journal = status["journal"] ?? [:]
        let sync = journal["synchronous"]?.stringValue ?? "?"
        if status["degraded"]?.boolValue == true {
            print("journal: DEGRADED since \(journal["since"]?.stringValue ?? "?") (synchronous=\(sync))")
            print("  problem: \(journal["problem"]?.stringValue ?? "?")")
            print("  -> \(journal["fix"]?.stringValue ?? "fix the cause")")
            print("  device events held \(journal["held"]?.intValue ?? 0), dropped \(journal["dropped"]?.intValue ?? 0); requests refused \(journal["refused"]?.intValue ?? 0)")
        } else {
            let dropped = journal["dropped"]?.intValue ?? 0
            print("journal: ok (synchronous=\(sync)\(sync == "full" ? "" : ": survives a crash, not a power cut"))\(dropped > 0 ? "; \(dropped) device events were dropped since start (see daemon.degraded events)" : "")")
        }
        for (name, device) in (status["devices"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let reason = device["reason"]?.stringValue.map { " (\($0))" } ?? ""
            print("  \(name): \(device["state"]?.stringValue ?? "?")\(reason)")
        }
        for follower in status["followers"]?.arrayValue ?? [] {
            print(Doctor.followerCheck(follower).what)
        }
        if status["degraded"]?.boolValue == true { throw ExitCode(1) }
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a POS event, e.g. publish sale.completed '{\"sale\":\"S1\",\"total\":\"9.50\",\"currency\":\"EUR\"}'.")
    @OptionGroup var connection: Connection
    @Argument var topic: String
    @Argument(help: "The event data, a JSON object.") var data: String

    func run() async throws {
        let data = parseJSONArgument(data, what: "the event data")
        let result = try await connection.run { [topic] in try await $0.request("publish", ["topic": .string(topic), "data": data]) }
        if connection.json { return connection.emit(result) }
        print("published \(topic) as seq \(result["seq"]?.intValue ?? 0)")
    }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Feed a demo device (tilld --demo).",
        subcommands: [Scan.self, Raw.self]
    )

    struct Scan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Simulate a barcode scan.")
        @OptionGroup var connection: Connection
        @Argument var text: String
        @Option var device = "sim-scanner"
        @Option(help: "AIM symbology identifier, e.g. ]E0.") var aim: String?

        func run() async throws {
            var data: [String: JSONValue] = ["text": .string(text)]
            if let aim { data["aim"] = .string(aim) }
            let result = try await connection.run { [device, data] in
                try await $0.request("simulate", ["device": .string(device), "data": .object(data)])
            }
            if connection.json { return connection.emit(result) }
            print("scanned \(text) on \(device)")
        }
    }

    struct Raw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "device",
            abstract: "Send any simulate data, e.g. simulate device sim-printer '{\"paper\":\"out\"}'."
        )
        @OptionGroup var connection: Connection
        @Argument var device: String
        @Argument var data: String

        func run() async throws {
            let data = parseJSONArgument(data, what: "the data")
            let result = try await connection.run { [device] in try await $0.request("simulate", ["device": .string(device), "data": data]) }
            if connection.json { return connection.emit(result) }
            print("ok")
        }
    }
}

struct Print: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a receipt document (FILE.json), raw bytes (--raw FILE), or a test page (test).",
        discussion: """
            --preview shows what the printer would print, in the terminal, without a printer or a daemon: \
            a receipt is encoded as tilld encodes it and read back by the virtual printer; --raw bytes \
            (what another program sends a printer) are read back the same way.
            """)
    @OptionGroup var connection: Connection
    @Argument(help: "A receipt JSON file, or 'test'.") var file: String?
    @Option(help: "Send this file's bytes as they are.") var raw: String?
    @Option(help: "The printer (default: the first one).") var device: String?
    @Flag(help: "Show the receipt here instead of printing it.") var preview = false
    @Option(help: "With --preview: characters per line (32 for 58 mm paper, 42 or 48 for 80 mm).") var columns: Int = 48

    func run() async throws {
        var params: [String: JSONValue] = [:]
        if let device { params["device"] = .string(device) }
        if let raw {
            guard let bytes = FileManager.default.contents(atPath: raw) else { fail("cannot read \(raw): check the path and that you may read it") }
            if preview { return show(Array(bytes), notes: []) }
            params["raw"] = .string(bytes.base64EncodedString())
        } else if file == "test" {
            var model = "the preview"
            if !preview {
                let listed = try await connection.run { [device] in
                    try await $0.request("devices")["devices"]?.arrayValue?.first { entry in
                        entry["role"] == "printer" && (device == nil || entry["name"]?.stringValue == device)
                    }
                }
                model = listed.map { "\($0["name"]?.stringValue ?? "?") (\($0["model"]?.stringValue ?? $0["driver"]?.stringValue ?? "?"))" } ?? "?"
            }
            params["receipt"] = Self.testPage(printer: model)
        } else if let file {
            guard let bytes = FileManager.default.contents(atPath: file) else { fail("cannot read \(file): check the path and that you may read it") }
            params["receipt"] = parseJSONArgument(String(decoding: bytes, as: UTF8.self), what: file)
        } else {
            fail("give a receipt file, --raw FILE, or test (tillctl print --help shows the receipt format's docs)")
        }
        if preview, let receipt = params["receipt"] {
            return try preview(receipt)
        }
        let result = try await connection.run { [params] in try await $0.request("print", params) }
        if connection.json { return connection.emit(result) }
        print("queued as job \(result["job"]?.stringValue ?? "?") (tillctl watch 'printer.*' shows its progress)")
        for note in result["notes"]?.arrayValue ?? [] { print("  note: \(note.stringValue ?? "")") }
    }

    private var profile: PrinterProfile {
        var profile = PrinterProfile.generic80
        profile.fonts = [.init(name: "Font A", columns: max(16, min(columns, 64)))]
        profile.dots = profile.columns * 12
        return profile
    }

    private func preview(_ receipt: JSONValue) throws {
        let document: ReceiptDocument
        do {
            document = try ReceiptDocument(json: receipt)
        } catch let error as WireError {
            fail(error.message)
        }
        do {
            let encoded = try ReceiptEncoder(profile: profile, imaging: Imaging()).encode(document)
            show(encoded.bytes, notes: encoded.notes)
        } catch {
            fail("\(error.field) \(error.message)")
        }
    }

    private func show(_ bytes: [UInt8], notes: [String]) {
        let lines = VirtualPrinter.render(bytes, profile: profile)
        if connection.json {
            return connection.emit(["lines": .array(lines.map(JSONValue.string)), "bytes": .int(Int64(bytes.count)), "notes": .array(notes.map(JSONValue.string))])
        }
        let edge = "+" + String(repeating: "-", count: profile.columns) + "+"
        print(edge)
        for line in lines { print("|" + line.padding(toLength: max(line.count, profile.columns), withPad: " ", startingAt: 0) + "|") }
        print(edge)
        print("\(bytes.count) bytes")
        for note in notes { print("note: \(note)") }
    }

    /// What a technician checks on a new printer: the profile, styles, the code pages of the
    /// languages tilld's users print in, a barcode, a QR code, a picture, the cutter.
    static func testPage(printer: String) -> JSONValue {
        let now = Timestamp.format(Date())
        var receipt: [JSONValue] = [
            ["text": "tilld test page", "align": "center", "size": "double", "bold": true],
            ["text": .string("\(printer), \(now)"), "align": "center"],
            ["rule": "-"],
            ["text": "Styles:"],
            ["text": "bold", "bold": true], ["text": "underline", "underline": true], ["text": "inverse", "inverse": true],
            ["text": "tall", "size": "tall"], ["text": "wide", "size": "wide"],
            ["columns": [["text": "A long item name that wraps beside its price"], ["text": "1234.50", "align": "right"]]],
            ["rule": "-"],
            ["text": "Code pages:"],
            ["text": "ASCII: ABCxyz 0123456789 !@#$%&*()"],
            ["text": "Euro: 12,50 €"],
            ["text": "Deutsch: Grüße, Maß, Ärger"],
            ["text": "Français: crème brûlée, œuvre, façade"],
            ["text": "Polski: zażółć gęślą jaźń"],
            ["text": "Čeština: příliš žluťoučký kůň"],
            ["text": "Ελληνικά: Καλημέρα"],
            ["text": "Русский: Съешь ещё этих булок"],
            ["rule": "-"],
            ["barcode": ["type": "code128", "data": "TILLD-TEST-0123"]],
            ["barcode": ["type": "ean13", "data": "4006381333931"]],
            ["qr": ["data": "https://example.com/tilld", "size": 5]],
        ]
        if let logo = try? Imaging.encodePNG(Self.logo()) {
            receipt.append(["image": ["png": .string(logo.base64EncodedString())]])
        }
        receipt += [["feed": 2], ["cut": "partial"]]
        return ["lines": .array(receipt)]
    }

    /// A grey ramp in a frame: dithering and the printable width at a glance.
    static func logo() -> GrayImage {
        let width = 384, height = 64
        var image = GrayImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                let frame = x < 3 || x >= width - 3 || y < 3 || y >= height - 3
                image.pixels[y * width + x] = frame ? 0 : UInt8(x * 255 / width)
            }
        }
        return image
    }
}

struct Drawer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cash drawer: open it, or see who opened it.", subcommands: [Open.self, Log.self])

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open the cash drawer.")
        @OptionGroup var connection: Connection
        @Option var device: String?
        @Option(help: "The sale it is opened for (kept in the drawer log).") var sale: String?

        func run() async throws {
            var params: [String: JSONValue] = [:]
            if let device { params["device"] = .string(device) }
            if let sale { params["sale"] = .string(sale) }
            let result = try await connection.run { [params] in try await $0.request("drawer.open", params) }
            if connection.json { return connection.emit(result) }
            print("drawer opened")
        }
    }

    /// Events read so far, and when the last one came.
    final class Collected: Sendable {
        let state = Mutex<(events: [Event], last: ContinuousClock.Instant)>(([], .now))
    }

    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Who opened the drawer, when, and for how long (from the journal).",
            discussion: "Each drawer.open is journaled with the requesting user, uid and pid (from the kernel) and the sale when the POS gave one; the drawer's own opened/closed events say for how long.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this drawer.") var device: String?

        func run() async throws {
            let events = try await connection.run { conn -> [Event] in
                let latest = try await conn.request("subscribe", ["topics": ["drawer.*"], "since": 0])["seq"]?.intValue ?? 0
                // The replay has no end marker: read until an event at the latest seq, or until
                // the journal has been quiet for half a second (the replay of a local journal
                // never pauses that long).
                let collected = Collected()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await line in conn.events {
                            guard case .event(let event) = line else { continue }
                            collected.state.withLock {
                                $0.events.append(event)
                                $0.last = .now
                            }
                            if event.seq >= latest { return }
                        }
                    }
                    group.addTask {
                        while collected.state.withLock({ ContinuousClock.now - $0.last }) < .milliseconds(500) {
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
                return collected.state.withLock { $0.events }
            }
            let shown = events.filter { device == nil || $0.device == device }
            if connection.json {
                for event in shown { connection.emit(JSONValue.object(["seq": .int(event.seq), "time": .string(Timestamp.format(event.time)), "topic": .string(event.topic), "device": event.device.map(JSONValue.string) ?? .null, "data": event.data])) }
                return
            }
            var rows: [[String]] = [["TIME", "DRAWER", "WHAT", "BY", "SALE", "OPEN FOR"]]
            for event in shown {
                let what = event.topic.replacingOccurrences(of: "drawer.", with: "")
                var by = "", sale = "", open = ""
                if event.topic == "drawer.kicked" {
                    by = "\(event.data["user"]?.stringValue ?? "uid \(event.data["uid"]?.intValue ?? -1)") (pid \(event.data["pid"]?.intValue ?? 0))"
                    sale = event.data["sale"]?.stringValue ?? ""
                }
                switch event.data["open_seconds"] {
                case .double(let seconds)?: open = String(format: "%.1f s", seconds)
                case .int(let seconds)?: open = "\(seconds) s"
                default: break
                }
                rows.append([Timestamp.format(event.time), event.device ?? "", what, by, sale, open])
            }
            printTable(rows)
            if shown.isEmpty { print("no drawer events in the journal\(device.map { " for \($0)" } ?? "")") }
        }
    }
}

struct Display: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show lines on the customer display (one argument per line), or --clear it.")
    @OptionGroup var connection: Connection
    @Argument var lines: [String] = []
    @Flag var clear = false
    @Option var device: String?

    func run() async throws {
        var params: [String: JSONValue] = clear ? ["clear": true] : ["lines": .array(lines.map(JSONValue.string))]
        if !clear && lines.isEmpty { fail("give the lines to show, or --clear") }
        if let device { params["device"] = .string(device) }
        let result = try await connection.run { [params] in try await $0.request("display", params) }
        if connection.json { return connection.emit(result) }
        print(clear ? "display cleared" : "display shows \(lines.count) line\(lines.count == 1 ? "" : "s")")
    }
}

/// What `tillctl web pair` and `unpair` take: a page's origin, and where till-web keeps pairings.
struct PageOrigin: ParsableArguments {
    @Argument(help: "The page's origin: scheme and host (and port if not the default), e.g. https://pos.example.com.")
    var origin: String
    @Option(help: "till-web's state directory.")
    var stateDir = PairingDirectory.defaultPath

    /// The origin, once it looks like one (scheme and host, no path).
    func checkedOrigin() -> String {
        guard origin.hasPrefix("http://") || origin.hasPrefix("https://"), !origin.dropFirst(8).contains("/") else {
            fail("\(origin) is not an origin: write the scheme and host the page is served from, e.g. https://pos.example.com")
        }
        return origin
    }
}

/// till-web, the browser bridge (docs/web.md).
struct Web: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The browser bridge (till-web): pair a web page with the till; trust its HTTPS.", subcommands: [Pair.self, Unpair.self, Trust.self])

    struct Pair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a one-time code that lets a page of ORIGIN (e.g. https://pos.example.com) open the till's WebSocket.")
        @OptionGroup var page: PageOrigin

        func run() throws {
            let origin = page.checkedOrigin(), stateDir = page.stateDir
            let code: String
            do {
                code = try PairingDirectory(path: stateDir).issueCode(for: origin)
            } catch {
                fail("cannot write a pairing code in \(stateDir): \(error) (run with sudo, or give till-web's --state-dir)")
            }
            print("pairing code for \(PairingDirectory.normalized(origin)): \(code)")
            print("enter it in the page within 10 minutes (it sends it to till-web's POST /pair once).")
            print("the origin must also be in till-web's [web] origins.")
        }
    }

    struct Unpair: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke every token the pages of ORIGIN were given: they must be paired again to open the WebSocket.")
        @OptionGroup var page: PageOrigin

        func run() throws {
            let origin = page.checkedOrigin(), stateDir = page.stateDir
            do {
                try PairingDirectory(path: stateDir).revoke(origin: origin)
            } catch {
                fail("cannot revoke in \(stateDir): \(error) (run with sudo, or give till-web's --state-dir)")
            }
            print("tokens of \(PairingDirectory.normalized(origin)) revoked; a WebSocket already open stays open until it closes")
        }
    }

    struct Trust: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "How to make a browser trust till-web's HTTPS: its local certificate authority, its fingerprint, and the steps per system.")
        @Option(help: "till-web's state directory.")
        var stateDir = PairingDirectory.defaultPath
        @Flag(help: "Print the authority's certificate (PEM) instead, to copy it.")
        var pem = false

        func run() throws {
            let directory = stateDir + "/tls"
            guard let certificate = try? String(contentsOfFile: directory + "/ca.pem", encoding: .utf8) else {
                fail("no local certificate authority in \(directory) yet: set [web] tls_listen (e.g. \"0.0.0.0:443\") in /etc/tilld/till-web.toml and restart till-web; it makes one at its first start with HTTPS on")
            }
            if pem {
                print(certificate, terminator: "")
                return
            }
            let fingerprint = (try? String(contentsOfFile: directory + "/ca.sha256", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "(ca.sha256 is missing)"
            print("""
            till-web's local certificate authority: \(directory)/ca.pem
            SHA-256 fingerprint: \(fingerprint)

            On each machine whose browser runs the POS (once; the authority lasts ten years):
            1. Download http://THIS-TILL:8069/tls/ca.pem (or copy the file: `tillctl web trust --pem`)
               and check that its SHA-256 fingerprint is the one above.
            2. Trust it as an authority:
               - Windows (Chrome, Edge): open the file > Install Certificate > Local Machine >
                 Place all certificates in "Trusted Root Certification Authorities".
               - macOS: open it in Keychain Access (System keychain), double-click it > Trust >
                 "When using this certificate: Always Trust".
               - Linux (Chrome, Chromium): Settings > Privacy and security > Security > Manage
                 certificates > Authorities > Import, tick "Trust this certificate for identifying
                 websites"; or: certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "tilld local CA" -i ca.pem
               - ChromeOS, Android: Settings > Security > Encryption & credentials > Install a
                 certificate > CA certificate.
               - iPad: open the file in Safari, install the profile, then Settings > General >
                 About > Certificate Trust Settings: turn on full trust for it.
            3. Open https://THIS-TILL-ADDRESS/hw_proxy/hello: it answers "ping" with no warning.
            The server certificate names this till's host name and addresses (till-web's log says
            which at start) and is renewed by till-web itself; the authority's key never leaves
            \(directory) (mode 0600).
            """)
        }
    }
}

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the socket, permissions, the daemon and every device; say what to fix.")
    @OptionGroup var connection: Connection

    func run() async throws {
        var problems = 0
        func report(_ ok: Bool, _ what: String, fix: String? = nil) {
            if connection.json {
                var object: [String: JSONValue] = ["check": .string(what), "ok": .bool(ok)]
                if let fix { object["fix"] = .string(fix) }
                connection.emit(.object(object))
            } else {
                print("\(ok ? "ok  " : "FAIL") \(what)\(fix.map { "\n     -> \($0)" } ?? "")")
            }
            if !ok { problems += 1 }
        }
        let path = connection.socketPath
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        report(attributes != nil, "socket \(path) exists", fix: attributes == nil ? "start tilld (systemctl start tilld, or tilld --demo)" : nil)
        guard attributes != nil else { throw ExitCode(1) }
        let outcome: Result<(JSONValue, JSONValue), any Error>
        do {
            outcome = .success(try await TillConnection.with(socket: path) { conn in
                (try await conn.request("status"), try await conn.request("devices"))
            })
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .failure(let error as ConnectError):
            report(false, "connect to tilld", fix: error.description)
        case .failure(let error as WireError) where error.code == .forbidden:
            report(false, "read access", fix: error.message)
        case .failure(let error):
            report(false, "talk to tilld", fix: "\(error)")
        case .success(let (status, devices)):
            report(true, "tilld \(status["version"]?.stringValue ?? "?") answers (seq \(status["seq"]?.intValue ?? 0))")
            let journal = status["journal"] ?? [:]
            if status["degraded"]?.boolValue == true {
                report(false, "journal commits events (\(journal["problem"]?.stringValue ?? "?"))", fix: journal["fix"]?.stringValue)
            } else {
                report(true, "journal commits events")
            }
            let sync = journal["synchronous"]?.stringValue ?? "?"
            // "normal" is a documented choice, not a fault: said, not failed.
            report(true, sync == "full" ? "journal is synchronous=full (survives a power cut)"
                : "journal is synchronous=\(sync): acknowledged events survive a crash, not a power cut ([journal] sync = \"full\" to change)")
            let list = devices["devices"]?.arrayValue ?? []
            report(!list.isEmpty, "devices configured", fix: list.isEmpty ? "add [[device]] entries to /etc/tilld/tilld.toml (see docs/config.md)" : nil)
            for device in list {
                let name = device["name"]?.stringValue ?? "?"
                let state = device["state"]?.stringValue ?? "?"
                report(state == "online", "\(name) (\(device["role"]?.stringValue ?? "?"), \(device["driver"]?.stringValue ?? "?")) is \(state)", fix: device["reason"]?.stringValue)
            }
            let waiting = status["print_queue"]?.intValue ?? 0
            report(waiting < 5, "print queue (\(waiting) waiting)", fix: waiting >= 5 ? "jobs are waiting: check paper and cover, or cancel with print.cancel" : nil)
            for follower in status["followers"]?.arrayValue ?? [] {
                let (ok, what, fix) = Self.followerCheck(follower)
                report(ok, what, fix: fix)
            }
            systemChecks(status: status, devices: devices, report: report)
        }
        if problems > 0 { throw ExitCode(1) }
    }

    /// A follower (till-crm) against the journal's retention: `status` judges it
    /// (`FollowerHorizon`); this says it and what to do.
    static func followerCheck(_ follower: JSONValue) -> (ok: Bool, what: String, fix: String?) {
        let name = follower["name"]?.stringValue ?? "?"
        let seq = follower["seq"]?.intValue ?? 0
        let behind = follower["behind"]?.intValue ?? 0
        let acked = follower["acked"]?.stringValue ?? "?"
        switch follower["state"]?.stringValue {
        case "lost":
            return (false, "follower \(name) last applied seq \(seq) (at \(acked)); the journal no longer holds the events after it",
                    "\(name) goes on from the oldest event held and logs the gap: check `till-crm status`, then re-enter what the gap held (docs/crm.md)")
        case "near_horizon":
            var when: [String] = []
            if let at = follower["pruned_at"]?.stringValue { when.append("at \(at)") }
            if let left = follower["events_left"]?.intValue { when.append("after \(left) more events") }
            return (false, "follower \(name) is \(behind) events behind (applied through seq \(seq), at \(acked)); what it has not applied is pruned \(when.joined(separator: " or "))",
                    "\(name) is not applying: run `till-crm status` (is its database reachable?). To buy time, raise [journal] retain_days / retain_events in tilld's config and restart tilld")
        default:
            return (true, "follower \(name) applied through seq \(seq) (\(behind) behind, at \(acked))", nil)
        }
    }

    /// What is wrong around tilld rather than in it: the socket, the device nodes against the
    /// daemon's user, kernel drivers, ModemManager, the udev rules, the config file, the unit,
    /// the journal's size.
    func systemChecks(status: JSONValue, devices: JSONValue, report: (Bool, String, String?) -> Void) {
        let files = FileManager.default
        let path = connection.socketPath
        if let attributes = try? files.attributesOfItem(atPath: path) {
            let mode = (attributes[.posixPermissions] as? Int) ?? 0
            let group = (attributes[.groupOwnerAccountName] as? String) ?? "?"
            report(mode & 0o007 == 0, String(format: "socket is mode %04o, group %@", mode, group),
                   mode & 0o007 == 0 ? nil : "anyone may connect: tilld makes it 0660 itself; check what else creates \(path)")
        }
        let peer = status["peer"] ?? [:]
        let may = peer["may"]?.stringValue ?? "nothing"
        report(true, "you (\(peer["user"]?.stringValue ?? "uid \(peer["uid"]?.intValue ?? -1)")) may \(may)"
            + (may == "act" ? "" : ": printing, drawers, displays and publishing need act ([access] act_users or act_groups)"), nil)

        // Each device node tilld claimed, against the user tilld runs as.
        let daemon = status["daemon"] ?? [:]
        let uid = UInt32(daemon["uid"]?.intValue ?? 0)
        let gids = Set((daemon["gids"]?.arrayValue ?? []).compactMap { $0.intValue.map(UInt32.init) })
        let daemonUser = daemon["user"]?.stringValue ?? "uid \(uid)"
        let seen = devices["seen"]?.arrayValue ?? []
        let modemManager = Self.processRunning("ModemManager")
        for device in seen {
            guard let name = device["claimed_by"]?.stringValue else { continue }
            let node = device["node"]?.stringValue
            if let node, let attributes = try? files.attributesOfItem(atPath: node) {
                let mode = (attributes[.posixPermissions] as? Int) ?? 0
                let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value ?? 0
                let group = (attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value ?? 0
                let shown = DoctorChecks.describe(mode: mode, owner: (attributes[.ownerAccountName] as? String) ?? "\(owner)", group: (attributes[.groupOwnerAccountName] as? String) ?? "\(group)")
                let ok = DoctorChecks.mayReadWrite(mode: mode, owner: owner, group: group, uid: uid, gids: gids)
                report(ok, "\(name): \(node) is \(shown); tilld runs as \(daemonUser)",
                       ok ? nil : "tilld cannot open it: install the udev rules (tilld --udev-rules > /etc/udev/rules.d/60-tilld.rules && udevadm trigger), or add \(daemonUser) to the node's group")
            }
            if let drivers = device["kernel_driver"]?.stringValue, drivers.split(separator: ",").contains("usblp"), device["kind"] == "usb" {
                let state = (devices["devices"]?.arrayValue ?? []).first { $0["name"]?.stringValue == name }?["state"]?.stringValue
                report(state == "online", "\(name): the usblp kernel driver is bound to the printer's interface" + (state == "online" ? "; tilld detaches it while it holds the printer" : ""),
                       state == "online" ? nil : "if tilld cannot claim it, unbind usblp (echo -n INTERFACE > /sys/bus/usb/drivers/usblp/unbind) or blacklist it (echo blacklist usblp > /etc/modprobe.d/tilld.conf)")
            }
            if modemManager, device["kind"] == "serial", device["mm_ignore"] != true {
                report(false, "\(name): ModemManager is running and may probe \(node ?? "its serial port")", "install tilld's udev rules (they set ID_MM_DEVICE_IGNORE=1), or systemctl disable --now ModemManager")
            }
        }

        // The udev rules, against the ones this tilld makes (only where there is hardware).
        let hardware = !seen.isEmpty || (devices["devices"]?.arrayValue ?? []).contains { $0["identity"]?.stringValue?.hasPrefix("demo:") != true }
        if hardware, let tilld = Self.tilldBinary() {
            let rulesPaths = ["/etc/udev/rules.d/60-tilld.rules", "/lib/udev/rules.d/60-tilld.rules", "/usr/lib/udev/rules.d/60-tilld.rules"]
            let installed = rulesPaths.first { files.fileExists(atPath: $0) }
            if let (code, expected) = Self.capture(tilld, ["--udev-rules", "--config", "/dev/null"]), code == 0 {
                let problem = DoctorChecks.udevRulesProblem(installed: installed.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }, expected: expected, path: installed ?? rulesPaths[0])
                report(problem == nil, problem?.problem ?? "udev rules \(installed ?? "") are current", problem?.fix)
            }
        }
        if let config = status["config"]?.stringValue, files.fileExists(atPath: config), let tilld = Self.tilldBinary(),
           let (code, output) = Self.capture(tilld, ["--check-config", "--config", config]) {
            report(code == 0, code == 0 ? "config \(config) is valid" : "config \(config) has problems:\n     \(output.split(separator: "\n").joined(separator: "\n     "))",
                   code == 0 ? nil : "fix them, then systemctl reload tilld (SIGHUP); until then the previous config stays in force")
        }
        if files.fileExists(atPath: "/run/systemd/system"), let (_, state) = Self.capture("/usr/bin/systemctl", ["is-active", "tilld.service"]) {
            let active = state.trimmingCharacters(in: .whitespacesAndNewlines)
            report(active == "active" || status["demo"] == true, "systemd unit tilld.service is \(active)", active == "active" ? nil : "systemctl enable --now tilld.socket tilld.service (docs/install.md)")
        } else {
            report(true, "not under systemd: tilld was started by hand", nil)
        }
        let journal = status["journal"] ?? [:]
        if let file = journal["path"]?.stringValue {
            let size = ((try? files.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
            let free = ((try? files.attributesOfFileSystem(forPath: file))?[.systemFreeSize] as? NSNumber)?.int64Value
            let low = free.map { $0 < 64 << 20 } ?? false
            report(!low, "journal \(file): \(size >> 10) KiB, oldest seq \(journal["oldest"]?.intValue.map(String.init) ?? "-")" + (free.map { ", \($0 >> 20) MiB free on its disk" } ?? ""),
                   low ? "the disk is nearly full: free space, or lower [journal] retain_days" : nil)
        }
    }

    static func processRunning(_ name: String) -> Bool {
        let proc = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return proc.contains { pid in
            pid.allSatisfy(\.isNumber) && (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == name
        }
    }

    /// tilld beside this tillctl (a build, the package), else on the PATH.
    static func tilldBinary() -> String? {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tilld").path
        let candidates = [here] + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/sbin").split(separator: ":").map { "\($0)/tilld" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func capture(_ executable: String, _ arguments: [String]) -> (Int32, String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
