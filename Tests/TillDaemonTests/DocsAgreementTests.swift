import Foundation
import Testing
import TillDevices
import TillDrivers

/// docs/devices.md lists every driver and option the registry knows: a driver or option added
/// without its documentation fails here.
@Suite("docs/devices.md agrees with the driver registry")
struct DocsAgreementTests {
    @Test("every driver, and every option of every driver, is in docs/devices.md")
    func everyOptionDocumented() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/devices.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for driver in BuiltinDrivers.registry.drivers {
            #expect(text.contains("`\(driver.name)`"), "driver \(driver.name)")
            for option in driver.options {
                #expect(text.contains("`\(option.key)`"), "\(driver.name): option \(option.key)")
            }
        }
    }
}
