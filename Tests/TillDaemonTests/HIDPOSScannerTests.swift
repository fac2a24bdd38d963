import Synchronization
import Testing
import TillDevices
import TillDrivers
import TillScanner
import TillTransport
import TillTransportTesting

@Suite("hidpos-scanner driver over scripted reports", .timeLimit(.minutes(1)))
struct HIDPOSScannerTests {
    /// A scanner whose every open gives a new scripted device, kept for the test to drive.
    final class Rig: Sendable {
        let devices = Mutex<[ScriptedHIDReports]>([])
        let problems = Mutex<[String]>([])
        let sink = RecordingSink()
        var scanner: HIDPOSScanner { _scanner! }
        nonisolated(unsafe) private var _scanner: HIDPOSScanner?

        init(descriptor: [UInt8] = HIDPOSRecordings.counted) {
            let info = DeviceInfo(name: "hid-scanner", role: .scanner, driver: "hidpos-scanner", transport: "hidraw")
            _scanner = HIDPOSScanner(info: info, classifier: ScanClassifier(), reportGap: .milliseconds(100), onProblem: { [unowned self] problem in
                problems.withLock { $0.append(problem) }
            }) { [unowned self] in
                let device = ScriptedHIDReports(endpoint: "/dev/hidraw0", descriptor: descriptor)
                devices.withLock { $0.append(device) }
                return device
            }
        }

        func device(_ index: Int) -> ScriptedHIDReports { devices.withLock { $0[index] } }
    }

    @Test("scans with the scanner's AIM identifier, a long one over several reports, other reports ignored")
    func scans() async throws {
        let rig = Rig()
        let (scanner, sink) = (rig.scanner, rig.sink)
        await scanner.prepare()
        #expect(scanner.status == DeviceStatus.online)
        let running = Task { try await scanner.run(events: sink) }
        defer { running.cancel() }
        let device = rig.device(0)
        for report in HIDPOSRecordings.countedReports("4006381333931", aim: "]E0") { device.send(report) }
        device.send([0x05, 1, 2, 3])  // a report this layout does not read
        let long = "0104006381333931" + "10" + String(repeating: "L", count: 20) + "\u{1D}" + "21" + String(repeating: "S", count: 20) + "\u{1D}" + "91" + String(repeating: "X", count: 60)
        for report in HIDPOSRecordings.countedReports(long, aim: "]d2") { device.send(report) }
        try await sink.waitFor("two scans") { $0.scans.count == 2 }
        #expect(sink.scans[0].text == "4006381333931" && sink.scans[0].aim == "]E0" && sink.scans[0].decoded.symbology == .ean13 && sink.scans[0].decoded.kind == .product)
        #expect(sink.scans[1].text == long && sink.scans[1].decoded.symbology == .datamatrix && sink.scans[1].decoded.gs1?["21"] == String(repeating: "S", count: 20))
    }

    @Test("unplugged mid-scan: the half scan is dropped and said, the state goes offline, and it is read again when back")
    func unpluggedMidScan() async throws {
        let rig = Rig()
        let (scanner, sink) = (rig.scanner, rig.sink)
        await scanner.prepare()
        let running = Task { try await scanner.run(events: sink) }
        defer { running.cancel() }
        let first = rig.device(0)
        let reports = HIDPOSRecordings.countedReports(String(repeating: "7", count: 100), aim: "]C0")
        first.send(reports[0])  // the first half only; the continuation never comes
        try await sink.waitFor("the half scan given up") { _ in rig.problems.withLock { !$0.isEmpty } }
        #expect(rig.problems.withLock { $0[0].contains("dropped") == true })
        first.unplug()
        try await sink.waitFor("offline") { $0.states.contains { $0.state == .offline } }
        try await sink.waitFor("reopened") { _ in rig.devices.withLock { $0.count } >= 2 }
        let second = rig.device(1)
        for report in HIDPOSRecordings.countedReports("96385074", aim: "]E4") { second.send(report) }
        try await sink.waitFor("a scan after the replug") { $0.scans.count == 1 }
        #expect(sink.scans.map(\.text) == ["96385074"], "no scan from the half that was dropped")
        #expect(first.isClosed)
    }

    @Test("a scanner in keyboard mode is an error that says to use evdev-scanner")
    func keyboardMode() async throws {
        let rig = Rig(descriptor: HIDPOSRecordings.keyboard)
        let scanner = rig.scanner
        await scanner.prepare()
        #expect(scanner.status.state == .error && scanner.status.reason?.contains("evdev-scanner") == true, "\(scanner.status)")
        #expect(rig.devices.withLock { $0.allSatisfy(\.isClosed) }, "a device that is not ours is not kept open")
    }
}
