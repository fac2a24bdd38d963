import Foundation
import Testing

/// The import rules of docs/architecture.md, checked on the sources: a rule in a document only
/// holds while something fails when it is broken.
@Suite("Layering: what may import what")
struct LayeringTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")

    /// Module → the modules its files import.
    static func imports() throws -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            guard let files = FileManager.default.enumerator(atPath: sources.appendingPathComponent(module).path) else { continue }
            var imported = Set<String>()
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: sources.appendingPathComponent(module).appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ").map(String.init)
                    guard let index = words.firstIndex(of: "import"), index <= 1, words.count > index + 1 else { continue }
                    if index == 1, !["public", "internal", "package", "@testable", "@_exported"].contains(words[0]) { continue }
                    imported.insert(words[index + 1])
                }
            }
            result[module] = imported
        }
        return result
    }

    @Test("Glibc only in the system-call seam; each C library only in its one wrapper")
    func cOnlyInTheSeam() throws {
        let owners: [String: String] = [
            "Glibc": "TillSystem", "CTillSystem": "TillSystem", "CSystemd": "TillLinux", "CPhoneNumber": "TillPhoneNumber",
            "CEvdev": "TillTransport", "CXKBCommon": "TillKeymap", "CLibUSB": "TillTransport", "CLibUDev": "TillTransport",
            "CLibPNG": "TillImaging", "CQREncode": "TillImaging", "CDither": "TillESCPOS", "CJPEG": "TillWeb",
        ]
        for (module, imported) in try Self.imports() {
            for (library, owner) in owners where imported.contains(library) {
                #expect(module == owner, "\(module) imports \(library); only \(owner) may")
            }
        }
    }

    @Test("drivers never see the daemon, the journal or the database; till-crm links nothing of the devices")
    func layers() throws {
        let imports = try Self.imports()
        let forbidden: [String: [String]] = [
            "TillDevices": ["TillDaemon", "GRDB", "NIOCore", "NIOPosix", "TillSQLite", "TillDrivers", "Glibc"],
            "TillDrivers": ["TillDaemon", "GRDB", "TillSQLite", "NIOCore", "NIOPosix"],
            "TillTransport": ["TillDaemon", "TillDevices", "GRDB"],
            "TillSystem": ["TillDaemon", "TillDevices", "TillTransport", "NIOCore"],
            "TillCRM": ["TillDaemon", "TillLinux", "TillDevices", "TillDrivers", "TillTransport"],
            "TillCore": ["Glibc", "NIOCore", "GRDB", "TillDaemon"],
            // The browser bridge is a client of tilld's socket, like till-crm: nothing of the daemon.
            "TillWeb": ["TillDaemon", "TillLinux", "TillDevices", "TillDrivers", "TillTransport", "GRDB", "TillSQLite"],
            // The encoder is pure: bytes in, bytes out; no I/O, no C library, no device layer.
            "TillESCPOS": ["Glibc", "NIOCore", "GRDB", "TillDaemon", "TillDevices", "TillTransport", "TillSystem", "CLibPNG", "CQREncode"],
        ]
        for (module, banned) in forbidden {
            let imported = try #require(imports[module], "module \(module) exists")
            for name in banned {
                #expect(!imported.contains(name), "\(module) imports \(name)")
            }
        }
    }
}
