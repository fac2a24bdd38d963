import Foundation
public import TillDevices
public import TillScanner

/// Text files under STATE_DIR/demo where the demo printer and display show their output.
public struct DemoOutput: Sendable {
    let directory: URL

    public init(stateDirectory: String) throws {
        directory = URL(fileURLWithPath: stateDirectory).appendingPathComponent("demo")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
    }

    func append(_ file: String, _ text: String) throws {
        let url = directory.appendingPathComponent(file)
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o640])
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
    }

    func replace(_ file: String, _ text: String) throws {
        let url = directory.appendingPathComponent(file)
        try Data(text.utf8).write(to: url, options: .atomic)
        try? FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: url.path)
    }
}

/// The devices `tilld --demo` adds: `sim-scanner`, `sim-printer`, `sim-drawer`, `sim-display`.
public enum DemoDevices {
    public static func make(stateDirectory: String, classifier: ScanClassifier) throws -> [any TillDevice] {
        let output = try DemoOutput(stateDirectory: stateDirectory)
        let printer = SimPrinter(output: output)
        return [try DemoSerialScanner(classifier: classifier), printer, SimDrawer(printer: printer), SimDisplay.make(output: output)]
    }
}
