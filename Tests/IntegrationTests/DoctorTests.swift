import Foundation
import Glibc
import Testing
import TillClient
import TillCore

/// `tillctl doctor` against a daemon with real trouble: a device node tilld's user may not
/// open, and a printer held by the usblp kernel driver (in a umockdev testbed's sysfs).
@Suite("tillctl doctor finds what is wrong around tilld", .serialized, .timeLimit(.minutes(2)))
struct DoctorTests {
    @Test("a device node tilld's user may not open: FAIL naming the node, its mode, the user, and the fix", .enabled(if: getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/ttyS0")))
    func permission() async throws {
        // tilld as nobody, in a directory of its own, its binary copied there (a build tree may
        // not be readable by other users); /dev/ttyS0 is crw------- root:root.
        let asNobody = [
            "/bin/sh", "-c",
            #"d=$(dirname "$2"); cp "$0" "$d/tilld-nobody" && chown -R 65534:65534 "$d" && exec /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups "$d/tilld-nobody" "$@""#,
        ]
        let config = """
            [socket]
            group = ""
            [[device]]
            name = "back-scanner"
            role = "scanner"
            driver = "serial-scanner"
            path = "/dev/ttyS0"
            """
        let daemon = try await DaemonUnderTest(config: config, demo: false, wrapper: asNobody)
        let (code, output, _) = try await offThePool { try daemon.tillctlBlocking(["doctor"]) }
        #expect(code == 1, "\(output)")
        let line = output.split(separator: "\n").map(String.init).first { $0.contains("back-scanner: /dev/ttyS0") }
        #expect(line?.hasPrefix("FAIL") == true && line?.contains("crw------- root:root") == true && line?.contains("tilld runs as nobody") == true, "\(output)")
        #expect(output.contains("install the udev rules"), "\(output)")
        let (_, json, _) = try await offThePool { try daemon.tillctlBlocking(["doctor", "--json"]) }
        #expect(json.split(separator: "\n").contains { $0.contains(#""ok":false"#) && $0.contains("/dev/ttyS0") }, "\(json)")
    }

    @Test("a printer held by usblp: doctor says the kernel driver is bound and how to let go of it", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-wrapper")))
    func usblpBound() async throws {
        let bed = HotplugTests.Bed(plugged: ["printer printer 04b8 0e15 PRN-7 1"])
        let config = """
            [[device]]
            name = "front-printer"
            role = "printer"
            driver = "escpos"
            usb = { vendor = "04b8", product = "0e15", serial = "PRN-7" }
            """
        let daemon = try await DaemonUnderTest(config: config, demo: false, wrapper: bed.wrapper)
        let (code, output, _) = try await offThePool { try daemon.tillctlBlocking(["doctor"]) }
        #expect(code == 1, "\(output)")
        let line = output.split(separator: "\n").map(String.init).first { $0.contains("front-printer: the usblp kernel driver is bound") }
        #expect(line?.hasPrefix("FAIL") == true, "\(output)")
        #expect(output.contains("/sys/bus/usb/drivers/usblp/unbind"), "\(output)")
        let (_, devices, _) = try await offThePool { try daemon.tillctlBlocking(["devices"]) }
        #expect(devices.contains("/dev/usb/lp0") && devices.contains("the usblp node of the printer tilld drives through libusb as front-printer"), "\(devices)")
    }
}
