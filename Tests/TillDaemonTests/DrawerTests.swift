import Foundation
import Glibc
import Synchronization
import Testing
import TillCore
import TillDevices
@testable import TillDrivers
import TillSystem
import TillTransport
import TillTransportTesting

extension RecordingSink {
    var drawerEvents: [DeviceEvent] {
        events.withLock { events in
            events.compactMap { _, event in
                switch event {
                case .drawerOpened, .drawerClosed, .drawerLeftOpen: event
                default: nil
                }
            }
        }
    }
    var openings: Int { drawerEvents.filter { if case .drawerOpened = $0 { true } else { false } }.count }
    var closings: [Double?] { drawerEvents.compactMap { if case .drawerClosed(let s) = $0 { s } else { nil } } }
}

@Suite("the drawer behaviour every drawer driver shares", .timeLimit(.minutes(1)))
struct DrawerWatchTests {
    @Test("opened and closed on change only; a first reading of shut says nothing, of open says opened")
    func changesOnly() async {
        let sink = RecordingSink()
        let watch = DrawerWatch(device: "d")
        await watch.observe(open: false, events: sink)
        #expect(sink.drawerEvents.isEmpty && watch.isOpen == false)
        await watch.observe(open: false, events: sink)
        await watch.observe(open: true, events: sink)
        await watch.observe(open: true, events: sink)
        #expect(watch.isOpen == true && watch.openSince != nil)
        await watch.observe(open: false, events: sink)
        #expect(sink.openings == 1 && sink.closings.count == 1)

        let other = RecordingSink()
        let startedOpen = DrawerWatch(device: "e")
        await startedOpen.observe(open: true, events: other)
        #expect(other.openings == 1, "open at start: said, so it is never missed")
    }

    @Test("a kick into an open drawer, and a second kick before the first has shown, are refused as busy; a failed kick frees the next")
    func kicks() async throws {
        let sink = RecordingSink()
        var timing = DrawerWatch.Timing()
        timing.kickSettle = .milliseconds(200)
        let watch = DrawerWatch(device: "d", timing: timing)
        await watch.observe(open: false, events: sink)
        try watch.beginKick()
        #expect { try watch.beginKick() } throws: { error in
            (error as? DeviceError)?.kind == .busy && (error as? DeviceError)?.message.contains("has not said it opened") == true
        }
        watch.kickFailed()
        try watch.beginKick()
        try await Task.sleep(for: .milliseconds(250))
        try watch.beginKick()  // the settle time is over: the drawer did not open, a retry may go
        await watch.observe(open: true, events: sink)
        #expect { try watch.beginKick() } throws: { error in
            (error as? DeviceError)?.kind == .busy && (error as? DeviceError)?.message.contains("already open") == true
        }
        #expect(DeviceError(device: "d", .busy, "x").wireError.code == .busy)
        await watch.observe(open: false, events: sink)
        try watch.beginKick()
    }

    @Test("drawer.left_open after the set time and at the interval, only while open; no timer while shut")
    func reminders() async throws {
        let sink = RecordingSink()
        var timing = DrawerWatch.Timing()
        timing.leftOpenAfter = .milliseconds(200)
        timing.leftOpenEvery = .milliseconds(200)
        let watch = DrawerWatch(device: "d", timing: timing)
        let running = Task { try await watch.run(events: sink) }
        defer { running.cancel() }
        @Sendable func reminders() -> [Double] { sink.drawerEvents.compactMap { if case .drawerLeftOpen(let s) = $0 { s } else { nil } } }
        await watch.observe(open: true, events: sink)
        try await sink.waitFor("two reminders") { _ in reminders().count >= 2 }
        #expect(reminders()[0] >= 0.15 && reminders()[1] > reminders()[0])
        await watch.observe(open: false, events: sink)
        let count = reminders().count
        try await Task.sleep(for: .milliseconds(500))
        #expect(reminders().count == count)
    }
}

@Suite("serial-drawer over a scripted line", .timeLimit(.minutes(1)))
struct SerialDrawerTests {
    static func drawer(_ io: ScriptedIO, _ opening: SerialDrawer.Opening = .pulse(.dtr), _ configure: (inout SerialDrawer.Settings) -> Void = { _ in }) -> SerialDrawer {
        var settings = SerialDrawer.Settings(opening: opening)
        settings.stateLine = .dsr
        settings.pollInterval = nil
        settings.watchInterval = .milliseconds(20)
        configure(&settings)
        let info = DeviceInfo(name: "cash", role: .drawer, driver: "serial-drawer", transport: "serial")
        return SerialDrawer(info: info, settings: settings) { DescriptorStream(io) }
    }

    static func line(_ inputs: ModemLines? = []) -> ScriptedIO {
        let io = ScriptedIO(endpoint: "/dev/ttyUSB3", endOfFile: .unplugged)
        io.setModemInputs(inputs)
        return io
    }

    @Test("a pulse on DTR: dropped at open, raised for pulse_ms per kick with a rest four times as long; the switch on DSR gives opened and closed")
    func pulse() async throws {
        let io = Self.line([])
        let drawer = Self.drawer(io) {
            $0.pulse = .milliseconds(60)
            $0.pulses = 2
        }
        await drawer.prepare()
        #expect(drawer.status == .online)
        #expect(io.lineChanges.count == 1 && io.lineChanges[0].lines == .dtr && !io.lineChanges[0].on, "DTR dropped at open (Linux raised it)")
        let sink = RecordingSink()
        let running = Task { try await drawer.run(events: sink) }
        defer { running.cancel() }
        try await drawer.open(events: sink)
        let changes = Array(io.lineChanges.dropFirst())
        #expect(changes.map(\.on) == [true, false, true, false] && changes.allSatisfy { $0.lines == .dtr })
        let high = changes[1].at - changes[0].at, rest = changes[2].at - changes[1].at
        #expect(high >= .milliseconds(60) && rest >= .milliseconds(240), "pulse \(high), rest \(rest)")
        io.setModemInputs(.dsr)
        try await sink.waitFor("opened") { $0.openings == 1 }
        #expect(drawer.isOpen == true)
        await #expect { try await drawer.open(events: sink) } throws: { error in
            (error as? DeviceError)?.kind == .busy && (error as? DeviceError)?.message.contains("already open") == true
        }
        #expect(io.lineChanges.count == 5, "the refused kick fired nothing")
        try await Task.sleep(for: .milliseconds(150))
        io.setModemInputs([])
        try await sink.waitFor("closed") { $0.closings.count == 1 }
        #expect((sink.closings[0] ?? 0) >= 0.1)
        // The watch ended with the drawer shut: with no slow timer, the line is read no more.
        try await Task.sleep(for: .milliseconds(100))
        let reads = io.modemReads
        try await Task.sleep(for: .milliseconds(400))
        #expect(io.modemReads == reads, "an idle drawer reads nothing (\(io.modemReads - reads) reads)")
        #expect(sink.openings == 1 && sink.closings.count == 1)
    }

    @Test("open_sequence: the bytes go out as given; open_when low reads the wiring the other way round")
    func sequence() async throws {
        let io = Self.line(.dsr)
        let drawer = Self.drawer(io, .sequence([0x1B, 0x70, 0x00, 0x19, 0xFA])) { $0.openWhenHigh = false }
        await drawer.prepare()
        let sink = RecordingSink()
        let running = Task { try await drawer.run(events: sink) }
        defer { running.cancel() }
        try await sink.waitFor("the first reading") { _ in drawer.isOpen != nil }
        #expect(drawer.isOpen == false && sink.drawerEvents.isEmpty, "DSR high is shut with open_when low")
        try await drawer.open(events: sink)
        #expect(io.written == [0x1B, 0x70, 0x00, 0x19, 0xFA] && io.lineChanges.isEmpty)
        io.setModemInputs([])
        try await sink.waitFor("opened") { $0.openings == 1 }
    }

    @Test("a drawer that did not open: the close watch ends after openWithin, and the slow timer takes over")
    func didNotOpen() async throws {
        let io = Self.line([])
        let drawer = Self.drawer(io) {
            $0.openWithin = .milliseconds(200)
            $0.pollInterval = .milliseconds(300)
        }
        await drawer.prepare()
        let sink = RecordingSink()
        let running = Task { try await drawer.run(events: sink) }
        defer { running.cancel() }
        try await drawer.open(events: sink)
        try await Task.sleep(for: .milliseconds(400))
        // Three more reads take at least two slow intervals (600 ms); at the watch's 20 ms they
        // would take 60. Only a lower bound: a loaded machine makes it slower, never faster.
        let reads = io.modemReads
        let start = ContinuousClock.now
        let deadline = start + .seconds(20)
        while io.modemReads < reads + 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let elapsed = ContinuousClock.now - start
        #expect(io.modemReads >= reads + 3, "the slow timer goes on reading")
        #expect(elapsed >= .milliseconds(500), "every 300 ms once the watch is over, not every 20: 3 reads in \(elapsed)")
        #expect(sink.openings == 0)
    }

    @Test("a port without modem lines and a state line: error saying so; unplugged: offline, and back when it is")
    func faults() async throws {
        let noLines = Self.line(nil)
        let drawer = Self.drawer(noLines)
        await drawer.prepare()
        #expect(drawer.status.state == .error && drawer.status.reason?.contains("has no modem lines") == true, "\(drawer.status)")
        let sink = RecordingSink()
        await #expect { try await drawer.open(events: sink) } throws: { error in
            (error as? DeviceError)?.kind == .notReady && (error as? DeviceError)?.message.contains("modem lines") == true
        }

        let opens = Mutex<[ScriptedIO]>([])
        let info = DeviceInfo(name: "cash", role: .drawer, driver: "serial-drawer", transport: "serial")
        var settings = SerialDrawer.Settings(opening: .pulse(.rts))
        settings.stateLine = .cts
        settings.pollInterval = .milliseconds(30)
        let replugged = SerialDrawer(info: info, settings: settings) {
            let io = Self.line([])
            opens.withLock { $0.append(io) }
            return DescriptorStream(io)
        }
        await replugged.prepare()
        let running = Task { try await replugged.run(events: sink) }
        defer { running.cancel() }
        try await sink.waitFor("first reading") { _ in replugged.isOpen == false }
        opens.withLock { $0[0] }.failModemCalls(EIO)
        // Offline with the reason, then (the port opens again at once here) online.
        try await sink.waitFor("offline") { $0.states.contains { $0.state == .offline } }
        #expect(sink.states.first { $0.state == .offline }?.reason?.contains("/dev/ttyUSB3") == true, "\(sink.states)")
        try await sink.waitFor("online again") { _ in replugged.status == .online && opens.withLock { $0.count } == 2 }
        #expect(sink.states.map(\.state) == [.offline, .online])
        try await sink.waitFor("read again") { _ in replugged.isOpen == false }
    }
}

/// The real TIOCMGET / TIOCMBIS path, on the kernel's serial driver. A pseudo-terminal has no
/// modem lines (its error is checked everywhere); a UART (here, the VM's 16550 at /dev/ttyS0)
/// is put in loopback (DTR→DSR, RTS→CTS inside the chip), so the driver's pulse and the drawer
/// "switch" the test works through RTS can both be watched. Skipped only where there is no UART
/// with modem lines and loopback.
@Suite("serial-drawer on the kernel's serial driver", .serialized, .timeLimit(.minutes(1)))
struct SerialDrawerKernelTests {
    @Test("a pseudo-terminal has no modem lines: TIOCMGET says so, and the driver's error names the fix")
    func pseudoTerminal() async throws {
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        let line = try SerialPort.open(pty.devicePath, settings: SerialSettings())
        await #expect { _ = try await line.modemLines() } throws: { error in
            (error as? TransportError)?.kind == .invalidSettings && (error as? TransportError)?.message.contains("has no modem lines (ioctl(TIOCMGET): ENOTTY)") == true
        }
        await line.close()
    }

    /// A UART that answers TIOCMGET and takes loopback, opened for the test; nil (with why) when there is none.
    static func loopbackUART() -> (FileDescriptor, ModemLines, String)? {
        for path in ["/dev/ttyS0", "/dev/ttyS1"] {
            guard let fd = try? FileDescriptor.open(path, .readWrite, options: [.noControllingTerminal, .nonBlocking]) else { continue }
            guard let before = try? fd.modemLines(), (try? fd.setModemLines(.loop, on: true)) != nil, (try? fd.modemLines())?.contains(.loop) == true else {
                try? fd.close()
                continue
            }
            return (fd, before, path)
        }
        return nil
    }

    @Test("pulse on DTR seen on DSR through the UART's loopback; the switch on CTS (RTS dropped: open) gives opened and closed", .enabled(if: getuid() == 0, "opening /dev/ttyS* needs root"))
    func uartLoopback() async throws {
        guard let (probe, before, path) = Self.loopbackUART() else {
            // Not a failure to hide: this machine has no UART with modem lines.
            print("skipped: no UART with modem lines and loopback here (/dev/ttyS0, /dev/ttyS1)")
            return
        }
        defer {
            try? probe.replaceModemLines(before.subtracting(.loop))
            try? probe.close()
        }
        var settings = SerialDrawer.Settings(opening: .pulse(.dtr))
        settings.pulse = .milliseconds(300)
        settings.stateLine = .cts
        settings.openWhenHigh = false  // RTS is raised at open: CTS high is shut; the test drops RTS to "open" it
        settings.watchInterval = .milliseconds(20)
        settings.pollInterval = nil
        // The port's speed stays as the console has it.
        let speed = try probe.serialSettings()
        let info = DeviceInfo(name: "cash", role: .drawer, driver: "serial-drawer", transport: "serial", identity: path)
        let drawer = SerialDrawer(info: info, settings: settings) { try SerialPort.open(path, settings: speed) }
        await drawer.prepare()
        #expect(drawer.status == .online, "\(drawer.status)")
        try probe.setModemLines(.rts, on: true)
        #expect(try probe.modemLines().contains(.dsr) == false, "DTR dropped at open: DSR low through the loop")
        let sink = RecordingSink()
        let running = Task { try await drawer.run(events: sink) }
        defer { running.cancel() }
        try await sink.waitFor("the first reading") { _ in drawer.isOpen == false }
        // DSR (= DTR through the loop) sampled on a thread of its own while the kick goes out.
        let samples = Mutex<(values: [Bool], stop: Bool)>(([], false))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while !samples.withLock({ $0.stop }) {
                let high = (try? probe.modemLines())?.contains(.dsr) == true
                samples.withLock { $0.values.append(high) }
                ThreadSleep.sleep(.milliseconds(2))
            }
            done.signal()
        }
        try await Task.sleep(for: .milliseconds(50))
        try await drawer.open(events: sink)
        try await Task.sleep(for: .milliseconds(50))
        samples.withLock { $0.stop = true }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                done.wait()
                continuation.resume()
            }
        }
        let seen = samples.withLock { $0.values }
        #expect(seen.contains(true) && seen.last == false, "DSR high during the pulse, low after it: \(seen.count) samples, \(seen.filter { $0 }.count) high")
        #expect(try probe.modemLines().contains(.dsr) == false, "DTR dropped after the pulse")
        try probe.setModemLines(.rts, on: false)
        try await sink.waitFor("opened") { $0.openings == 1 }
        try probe.setModemLines(.rts, on: true)
        try await sink.waitFor("closed") { $0.closings.count == 1 }
        running.cancel()
        _ = await running.result
    }
}
