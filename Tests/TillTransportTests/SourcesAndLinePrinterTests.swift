import Foundation
import Glibc
import Testing
import TillSystem
import TillTransport
import TillTransportTesting

@Suite("Event and report sources (scripted), and the usblp transport", .timeLimit(.minutes(1)))
struct SourcesAndLinePrinterTests {
    @Test("scripted evdev: events in order, grab recorded, unplug thrown, timeout empty")
    func inputEvents() async throws {
        let device = ScriptedInputEvents()
        try await device.grab(true)
        #expect(device.isGrabbed)
        #expect(try await device.next(timeout: .milliseconds(20)).isEmpty)
        let press = [InputEvent(type: InputEvent.key, code: 2, value: 1), InputEvent(type: InputEvent.synchronization, code: 0, value: 0)]
        device.send(press)
        device.send([InputEvent.dropped])
        #expect(try await device.next(timeout: .seconds(1)) == press)
        #expect(try await device.next(timeout: .seconds(1)) == [InputEvent.dropped])
        device.unplug()
        await #expect { _ = try await device.next(timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .unplugged }
        await device.close()
        #expect(!device.isGrabbed && device.isClosed, "closing gives the device back")
    }

    @Test("scripted hidraw: the descriptor, then reports; unplug thrown")
    func hidReports() async throws {
        let device = ScriptedHIDReports(descriptor: [0x05, 0x8C, 0x09, 0x02])
        #expect(try await device.reportDescriptor().prefix(2) == [0x05, 0x8C])
        #expect(try await device.nextReport(timeout: .milliseconds(20)) == nil)
        device.send([0x02, 0x0D, 0x34, 0x30])
        #expect(try await device.nextReport(timeout: .seconds(1)) == [0x02, 0x0D, 0x34, 0x30])
        device.unplug()
        await #expect { _ = try await device.nextReport(timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .unplugged }
    }

    @Test("usblp: bytes written reach the device node (a FIFO stands in for /dev/usb/lp0); a missing node says what to check")
    func linePrinter() async throws {
        let path = NSTemporaryDirectory() + "lp-" + UUID().uuidString
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let stream = try LinePrinterDevice.open(path)
        let reader = try FileDescriptor.open(path, .readOnly, options: [.nonBlocking])
        defer { try? reader.close() }
        try await stream.write(Array("\u{1B}@Hello\n\u{1D}V\u{01}".utf8), timeout: .seconds(2))
        #expect(try reader.poll(for: .readable, timeout: .seconds(2)).contains(.readable))
        #expect(try reader.read(upTo: 64) == Array("\u{1B}@Hello\n\u{1D}V\u{01}".utf8))
        await stream.close()
        do {
            _ = try LinePrinterDevice.open("/dev/usb/lp-not-there")
            Issue.record("opened a missing printer node")
        } catch let error as TransportError {
            #expect(error.kind == .notFound && error.message.contains("/dev/usb/"), "\(error)")
        }
    }
}
