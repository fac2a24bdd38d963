import Foundation
import Glibc
import Testing
import TillSystem
import TillTransport

/// The serial transport through a pseudo-terminal: the kernel's tty layer, termios and all,
/// with the test holding the device's end.
@Suite("Serial transport over a pty", .timeLimit(.minutes(1)))
struct SerialTests {
    @Test("termios settings are applied and read back; the port is held exclusively")
    func settingsReadBack() throws {
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        // A pty keeps 8 data bits and no parity whatever it is asked (Linux forces CS8 and clears
        // PARENB), so these vary the rest; the next test uses that to see the read-back refuse.
        for settings in [
            SerialSettings(baud: 19200, dataBits: 8, parity: .none, stopBits: 2, flowControl: .rtsCts),
            SerialSettings(baud: 115_200, dataBits: 8, parity: .none, stopBits: 1, flowControl: .xonXoff),
            SerialSettings(),
        ] {
            let descriptor = try FileDescriptor.open(pty.devicePath, .readWrite, options: [.noControllingTerminal, .nonBlocking])
            defer { try? descriptor.close() }
            try descriptor.configureSerial(settings)
            #expect(try descriptor.serialSettings() == settings)
            try descriptor.lockTerminalExclusively()
            #expect(try descriptor.isTerminalExclusive())
        }
    }

    @Test("settings the driver does not keep are refused, naming what was asked and what was kept")
    func settingsNotKept() throws {
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        do {
            _ = try SerialPort.open(pty.devicePath, settings: SerialSettings(baud: 9600, dataBits: 7, parity: .even))
            Issue.record("7E1 reported as set on a pty, which keeps 8N1")
        } catch let error as TransportError {
            #expect(error.kind == .invalidSettings, "\(error)")
            #expect(error.message.contains("asked for 9600 7E1") && error.message.contains("kept 9600 8N1"), "\(error.message)")
        }
    }

    @Test("bytes flow both ways through SerialPort, and a second open is refused (busy) unless root")
    func bytesBothWays() async throws {
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        let port = try SerialPort.open(pty.devicePath, settings: SerialSettings(baud: 9600))
        try await port.write(Array("hello\r\n".utf8), timeout: .seconds(2))
        try await port.drain(timeout: .seconds(2))
        #expect(try pty.controller.poll(for: .readable, timeout: .seconds(2)).contains(.readable))
        #expect(try pty.controller.read(upTo: 64) == Array("hello\r\n".utf8))
        _ = try pty.controller.write(Array("4006381333931\r".utf8)[...])
        var received: [UInt8] = []
        while received.count < 14 {
            let chunk = try await port.read(maxCount: 64, timeout: .seconds(2))
            #expect(!chunk.isEmpty, "the scan arrived")
            if chunk.isEmpty { break }
            received += chunk
        }
        #expect(received == Array("4006381333931\r".utf8), "raw mode: CR is not turned into NL")
        if getuid() != 0 {
            #expect(throws: TransportError.self) { _ = try SerialPort.open(pty.devicePath, settings: SerialSettings()) }
        }
        await port.close()
        await #expect(throws: TransportError.self) { _ = try await port.read(maxCount: 1, timeout: .milliseconds(10)) }
    }

    @Test("a device that vanishes mid-read gives unplugged with the reason, at once, every time")
    func vanishes() async throws {
        let pty = try PseudoTerminal.open()
        let port = try SerialPort.open(pty.devicePath, settings: SerialSettings())
        let reading = Task { try await port.read(maxCount: 64, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(100))
        try pty.controller.close()  // the USB adapter is pulled out
        let started = ContinuousClock.now
        do {
            _ = try await reading.value
            Issue.record("a read on a vanished device returned")
        } catch let error as TransportError {
            #expect(error.kind == .unplugged, "\(error)")
            #expect(error.message.contains("unplugged"), "\(error.message)")
        }
        // Again: the error repeats at once; a driver's loop sees it and stops, it cannot spin on data.
        for _ in 0..<3 {
            await #expect(throws: TransportError.self) { _ = try await port.read(maxCount: 64, timeout: .seconds(30)) }
        }
        // Each read may wait 30 s; together they returned well before one timeout would pass
        // (the bound is loose because a busy test run can delay the tasks by seconds).
        #expect(ContinuousClock.now - started < .seconds(20), "no read waited for its timeout")
        await port.close()
    }

    @Test("opening a missing node, a non-terminal, or with bad settings says what to do")
    func openErrors() throws {
        do {
            _ = try SerialPort.open("/dev/ttyUSB-not-there", settings: SerialSettings())
            Issue.record("opened a missing node")
        } catch let error as TransportError {
            #expect(error.kind == .notFound && error.message.contains("plugged in"), "\(error)")
        }
        do {
            _ = try SerialPort.open("/dev/null", settings: SerialSettings())
            Issue.record("/dev/null taken for a serial port")
        } catch let error as TransportError {
            #expect(error.kind == .invalidSettings && error.message.contains("not a serial port"), "\(error)")
        }
        do {
            _ = try SerialPort.open("/dev/null", settings: SerialSettings(baud: 12345))
            Issue.record("baud 12345 accepted")
        } catch let error as TransportError {
            #expect(error.kind == .invalidSettings && error.message.contains("9600"), "\(error)")
        }
    }

    @Test("permission denied names the udev rules and the group; busy names fuser")
    func permission() throws {
        // Root opens anything, so the classification is checked on the error itself.
        let error = TransportError.from(SystemError(call: "open", subject: "/dev/ttyUSB0", errno: EACCES), endpoint: "/dev/ttyUSB0", opening: true)
        #expect(error.kind == .permission)
        #expect(error.message.contains("udev") && error.message.contains("usermod"))
        let busy = TransportError.from(SystemError(call: "open", subject: "/dev/ttyUSB0", errno: EBUSY), endpoint: "/dev/ttyUSB0", opening: true)
        #expect(busy.kind == .busy && busy.message.contains("fuser"))
    }
}
