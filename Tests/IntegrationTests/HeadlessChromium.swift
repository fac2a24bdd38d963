import Foundation
import Glibc
import TillCore

/// A real browser for the bridge's tests: Debian's Chromium, headless, driven over its
/// DevTools protocol (CDP) through one WebSocket (`TinyWebSocket`). It loads a page, runs
/// JavaScript in it, types, and takes screenshots; what the page does (fetch, WebSocket, CORS
/// preflights, its own origin) is the browser's own doing, as on a till.
///
/// `scripts/setup.sh test` installs `chromium`; `CHROMIUM=/path` picks another build. Running
/// as root (CI) needs `--no-sandbox`: the pages are the tests' own.
final class HeadlessChromium: @unchecked Sendable {
    private let process: Process
    private let exit: ChildExit
    private let devtools: TinyWebSocket
    private let profile: String
    private var nextID = 0
    private var session: String?

    static var executable: String? {
        if let chosen = ProcessInfo.processInfo.environment["CHROMIUM"] { return chosen }
        return ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "no Chromium to test the browser pages with: run scripts/setup.sh test (it installs Debian's chromium), or set CHROMIUM=/path/to/chrome" }
    }

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts the browser with a fresh profile and a 1024×600 window (a 7-inch till screen).
    /// `trusting`: a certificate authority (PEM file) the browser trusts, added the way a
    /// shop's technician adds till-web's on Linux (`certutil` into the user's NSS database),
    /// in a home of the browser's own.
    static func launch(trusting authority: String? = nil) throws -> HeadlessChromium {
        guard let executable else { throw Missing() }
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("tilld-chromium-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        let home = profile + "/home"
        let nss = home + "/.pki/nssdb"
        try FileManager.default.createDirectory(atPath: nss, withIntermediateDirectories: true)
        if let authority {
            for arguments in [["-N", "-d", "sql:" + nss, "--empty-password"],
                              ["-A", "-d", "sql:" + nss, "-t", "C,,", "-n", "tilld local CA", "-i", authority]] {
                let (status, _, err) = try runProcess("/usr/bin/certutil", arguments)
                guard status == 0 else { throw Failed(description: "certutil \(arguments.joined(separator: " ")): \(err) (scripts/setup.sh test installs libnss3-tools)") }
            }
        }
        let process = Process()
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home
        process.environment = environment
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--password-store=basic", "--use-mock-keychain",
            "--remote-debugging-port=0", "--user-data-dir=\(profile)", "--window-size=1024,600",
            "about:blank",
        ]
        process.standardOutput = FileHandle.nullDevice
        let log = FileManager.default.createFile(atPath: profile + ".log", contents: nil) ? FileHandle(forWritingAtPath: profile + ".log") : nil
        process.standardError = log ?? FileHandle.nullDevice
        let exit = ChildExit(process)
        try process.run()
        // Chromium writes the port it took, and the browser's DevTools path, to this file.
        let portFile = profile + "/DevToolsActivePort"
        let deadline = Date().addingTimeInterval(60)
        var contents: [Substring] = []
        while contents.count < 2 {
            guard process.isRunning else {
                let said = (try? String(contentsOfFile: profile + ".log", encoding: .utf8)) ?? ""
                throw Failed(description: "chromium exited (\(process.terminationStatus)) before it listened: \(said.suffix(2000))")
            }
            guard Date() < deadline else {
                process.terminate()
                throw Failed(description: "chromium did not open its DevTools port within 60 s")
            }
            usleep(50_000)
            contents = ((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "").split(separator: "\n")
        }
        guard let port = Int(contents[0]) else { throw Failed(description: "DevToolsActivePort: \(contents)") }
        let (status, devtools) = try TinyWebSocket.open(port: port, path: String(contents[1]), origin: nil, timeoutSeconds: 60)
        guard status == 101 else { throw Failed(description: "the DevTools WebSocket answered \(status)") }
        return HeadlessChromium(process: process, exit: exit, devtools: devtools, profile: profile)
    }

    private init(process: Process, exit: ChildExit, devtools: TinyWebSocket, profile: String) {
        self.process = process
        self.exit = exit
        self.devtools = devtools
        self.profile = profile
    }

    deinit { quit() }

    func quit() {
        if !exit.hasExited {
            kill(process.processIdentifier, SIGKILL)
            exit.wait(seconds: 10)
        }
        try? FileManager.default.removeItem(atPath: profile)
        try? FileManager.default.removeItem(atPath: profile + ".log")
    }

    /// One DevTools command; its result (events meanwhile are skipped).
    @discardableResult
    func call(_ method: String, _ params: [String: JSONValue] = [:], page: Bool = true) throws -> JSONValue {
        nextID += 1
        var message: [String: JSONValue] = ["id": .int(Int64(nextID)), "method": .string(method), "params": .object(params)]
        if page, let session { message["sessionId"] = .string(session) }
        devtools.sendText(JSONText.encode(.object(message)))
        let id = nextID
        let reply = try devtools.receive { $0["id"]?.intValue == Int64(id) }
        if let error = reply["error"] { throw Failed(description: "\(method): \(error)") }
        return reply["result"] ?? .null
    }

    /// Opens `url` in a new tab and attaches to it; later calls go to that page.
    func open(_ url: String) throws {
        let target = try call("Target.createTarget", ["url": .string(url)], page: false)
        guard let id = target["targetId"]?.stringValue else { throw Failed(description: "no target for \(url)") }
        session = try call("Target.attachToTarget", ["targetId": .string(id), "flatten": true], page: false)["sessionId"]?.stringValue
        try call("Runtime.enable")
        try call("Emulation.setDeviceMetricsOverride", ["width": 1024, "height": 600, "deviceScaleFactor": 1, "mobile": false])
    }

    /// Runs `expression` in the page (promises awaited); its value, as JSON.
    func evaluate(_ expression: String) throws -> JSONValue {
        let result = try call("Runtime.evaluate", ["expression": .string(expression), "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw Failed(description: "the page threw: \(exception)") }
        return result["result"]?["value"] ?? .null
    }

    /// Waits until `expression` is true in the page; the last value it had, on timeout.
    func wait(for what: String, until expression: String, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: JSONValue = .null
        while Date() < deadline {
            last = (try? evaluate(expression)) ?? .null
            if last == .bool(true) { return }
            usleep(100_000)
        }
        throw Failed(description: "timed out waiting for \(what) (\(expression) was \(last)); the page's state: \((try? evaluate("document.body.innerText")) ?? .null)")
    }

    /// Types into the focused element as a keyboard would (input events, not a value set).
    func type(_ text: String) throws {
        try call("Input.insertText", ["text": .string(text)])
    }

    /// Clicks the centre of the element `selector` names, with the mouse.
    func click(_ selector: String) throws {
        let box = try evaluate("(() => { const r = document.querySelector(\(JSONText.encode(selector))).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        guard let point = box.arrayValue, point.count == 2 else { throw Failed(description: "no element \(selector)") }
        let x = Self.number(point[0]), y = Self.number(point[1])
        for type in ["mousePressed", "mouseReleased"] {
            try call("Input.dispatchMouseEvent", ["type": .string(type), "x": .double(x), "y": .double(y), "button": "left", "clickCount": 1])
        }
    }

    /// The page as a PNG.
    func screenshot() throws -> Data {
        let shot = try call("Page.captureScreenshot", ["format": "png"])
        guard let data = shot["data"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else { throw Failed(description: "no screenshot") }
        return data
    }

    private static func number(_ value: JSONValue) -> Double {
        switch value {
        case .int(let n): Double(n)
        case .double(let d): d
        default: 0
        }
    }
}
