import Foundation
import Testing
import TillDevices
import TillDrivers
import TillESCPOS
import TillScanner

@Suite("Quirks: device differences as data", .timeLimit(.minutes(1)))
struct QuirksTests {
    private var shipped: String { Quirks.defaultDirectories[0] }

    @Test("the shipped files load without a problem; every device rests on a source and names a profile that exists")
    func shippedData() throws {
        let (quirks, problems) = Quirks.load(directories: [shipped])
        #expect(problems.isEmpty, "\(problems)")
        #expect(quirks.files.count == 2, "devices.json and printer-profiles.json")
        #expect(quirks.devices.count >= 20)
        #expect(quirks.profiles.count >= 35)
        for device in quirks.devices {
            #expect(!device.source.isEmpty)
            if device.role == .printer {
                #expect(device.profile.flatMap(quirks.profile) != nil, "\(device.model): profile \(device.profile ?? "none")")
            }
        }
        let usbIDs = quirks.devices.compactMap(\.usb)
        #expect(Set(usbIDs).count == usbIDs.count, "one entry per USB id")
    }

    @Test("a TM-T20II is known by its USB id, with the printer database's profile")
    func lookup() throws {
        let (quirks, _) = Quirks.load(directories: [shipped])
        let printer = try #require(quirks.device(usb: USBID("04b8:0e15")!))
        #expect(printer.role == .printer && printer.driver == "escpos" && printer.profile == "TM-T20II")
        let profile = try #require(quirks.profile("TM-T20II"))
        #expect(profile.dots == 576 && profile.fonts.first?.columns == 48)
        #expect(profile.codePages[19] == "CP858" && profile.fullCut && profile.qr)
        #expect(quirks.device(usb: USBID("1eab:1310")!)?.driver == "hidpos-scanner")
        #expect(quirks.device(model: "epson dm-d210")?.columns == 20)
        #expect(quirks.profile("generic-58mm")?.fonts.first?.columns == 32)
        #expect(quirks.profile("generic-80mm")?.drawerPins == [2, 5])
    }

    @Test("an override file replaces an entry and a profile, adds new ones; a broken file or entry is reported and the rest still loads")
    func overrides() throws {
        let local = NSTemporaryDirectory() + "quirks-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        try #"""
        {"format": 1,
         "devices": [
          {"usb": "04b8:0e15", "model": "Our TM-T20II on 58 mm paper", "role": "printer", "driver": "escpos", "profile": "TM-T20II-58", "source": "the shop's own roll"},
          {"usb": "abcd:0001", "model": "House-brand scanner", "role": "scanner", "driver": "serial-scanner", "scanner": {"terminator": "tab", "aim": true}, "source": "lsusb on the till"},
          {"usb": "abcd:0002", "model": "Mystery", "role": "printer", "driver": "laserjet", "source": "a guess"}
         ],
         "profiles": {"TM-T20II-58": {"vendor": "Epson", "model": "TM-T20II, 58 mm roll", "dots": 420, "fonts": [{"name": "Font A", "columns": 35}], "code_pages": {"19": "CP858"}}}}
        """#.write(toFile: local + "/10-shop.json", atomically: true, encoding: .utf8)
        try "{ not json".write(toFile: local + "/20-broken.json", atomically: true, encoding: .utf8)
        try "ignored: not .json".write(toFile: local + "/README", atomically: true, encoding: .utf8)
        let (quirks, problems) = Quirks.load(directories: [shipped, local, local + "/missing-dir"])
        let replaced = try #require(quirks.device(usb: USBID("04b8:0e15")!))
        #expect(replaced.profile == "TM-T20II-58" && replaced.file.hasSuffix("10-shop.json"))
        #expect(quirks.profile("TM-T20II-58")?.fonts.first?.columns == 35)
        #expect(quirks.profile("TM-T20II")?.fonts.first?.columns == 48, "the shipped profile is still there")
        #expect(quirks.device(usb: USBID("abcd:0001")!)?.driver == "serial-scanner")
        #expect(quirks.device(usb: USBID("abcd:0001")!)?.scanFraming?.terminator == .tab)
        #expect(quirks.device(usb: USBID("abcd:0001")!)?.scanFraming?.aim == true)
        #expect(quirks.device(usb: USBID("abcd:0002")!) == nil, "an entry with an unknown driver is skipped")
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.contains { $0.file.hasSuffix("10-shop.json") && $0.message.contains("laserjet") == false && $0.message.contains("driver must be one tilld knows") })
        #expect(problems.contains { $0.file.hasSuffix("20-broken.json") && $0.message.contains("not read") })
    }
}
