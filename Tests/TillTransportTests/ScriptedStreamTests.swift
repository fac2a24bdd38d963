import Dispatch
import Glibc
import Testing
import TillSystem
import TillTransport
import TillTransportTesting

/// The stream code (`DescriptorStream`) over a scripted descriptor: each failure a device
/// causes, injected where it happens, at the system call.
@Suite("Byte stream over a scripted descriptor", .timeLimit(.minutes(1)))
struct ScriptedStreamTests {
    @Test("partial writes: every byte goes out, in order, however few the device takes per call")
    func partialWrites() async throws {
        let io = ScriptedIO()
        io.takeAtMost(3)
        let stream = DescriptorStream(io)
        let job = Array(0..<200).map { UInt8($0) }
        try await stream.write(job, timeout: .seconds(2))
        #expect(io.written == job)
        #expect(io.writeCalls >= 67)
    }

    @Test("EAGAIN: a device that is busy for a while is waited for, not failed")
    func wouldBlockThenTakes() async throws {
        let io = ScriptedIO()
        io.refuseWrites(5)
        let stream = DescriptorStream(io)
        try await stream.write(Array("ok".utf8), timeout: .seconds(2))
        #expect(io.written == Array("ok".utf8))
    }

    @Test("a device that takes nothing until the timeout: timedOut, saying how far it got")
    func writeTimeout() async throws {
        let io = ScriptedIO()
        let stream = DescriptorStream(io)
        io.stallWrites()
        do {
            try await stream.write(Array(repeating: 0x1B, count: 10), timeout: .milliseconds(200))
            Issue.record("a write to a device that takes nothing returned")
        } catch let error as TransportError {
            #expect(error.kind == .timedOut && error.message.contains("0 of 10 bytes"), "\(error)")
        }
        // The device takes bytes again (paper loaded): the next write goes through.
        io.resumeWrites()
        try await stream.write([0x0A], timeout: .seconds(1))
        #expect(io.written == [0x0A])
    }

    @Test("EIO or ENODEV on a write or a read: unplugged; end of file: closed")
    func failures() async throws {
        let io = ScriptedIO()
        let stream = DescriptorStream(io)
        io.failWrites(ENODEV)
        await #expect { try await stream.write([1, 2, 3], timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .unplugged }
        io.failWrites(nil)
        io.failReads(EIO)
        await #expect { _ = try await stream.read(maxCount: 8, timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .unplugged }
        io.send([0x41, 0x42])
        #expect(try await stream.read(maxCount: 8, timeout: .seconds(1)) == [0x41, 0x42])
        io.sendEndOfFile()
        await #expect { _ = try await stream.read(maxCount: 8, timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .closed }
        let device = ScriptedIO(endpoint: "/dev/ttyUSB0", endOfFile: .unplugged)
        device.sendEndOfFile()
        await #expect { _ = try await DescriptorStream(device).read(maxCount: 8, timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .unplugged }
    }

    @Test("a read with nothing to read returns [] after its timeout; bytes sent meanwhile wake it early")
    func readTimeout() async throws {
        let io = ScriptedIO()
        let stream = DescriptorStream(io)
        let start = ContinuousClock.now
        #expect(try await stream.read(maxCount: 8, timeout: .milliseconds(100)).isEmpty)
        #expect(ContinuousClock.now - start >= .milliseconds(90))
        // The device acts from a thread of its own: the test's tasks may wait for a busy pool.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { io.send([7]) }
        let early = ContinuousClock.now
        #expect(try await stream.read(maxCount: 8, timeout: .seconds(30)) == [7])
        #expect(ContinuousClock.now - early < .seconds(20), "woken by the bytes, not by the timeout")
    }

    @Test("drain waits for the line's queue to empty, and times out when it never does")
    func drain() async throws {
        let io = ScriptedIO()
        let stream = DescriptorStream(io)
        io.setOutputQueued(12)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { io.setOutputQueued(0) }
        try await stream.drain(timeout: .seconds(30))
        io.setOutputQueued(5)
        await #expect { try await stream.drain(timeout: .milliseconds(100)) } throws: { ($0 as? TransportError)?.kind == .timedOut }
    }

    @Test("close is idempotent, closes the descriptor once, and later calls say closed")
    func close() async throws {
        let io = ScriptedIO()
        let stream = DescriptorStream(io)
        await stream.close()
        await stream.close()
        #expect(io.isClosed)
        await #expect { try await stream.write([1], timeout: .seconds(1)) } throws: { ($0 as? TransportError)?.kind == .closed }
    }
}

@Suite("Back-off", .timeLimit(.minutes(1)))
struct BackoffTests {
    @Test("doubles from the initial delay up to the maximum, within the jitter")
    func doubling() {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(4), jitter: 0.2)
        let middle = (0..<6).map { _ in backoff.next(random: 0.5) }
        #expect(middle == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(4), .seconds(4)])
        backoff.reset()
        #expect(backoff.next(random: 0) == .milliseconds(400))
        #expect(backoff.next(random: 0.999_999) > .milliseconds(1199))
    }
}
