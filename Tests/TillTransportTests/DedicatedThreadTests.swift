import Foundation
import Glibc
import Testing
import TillSystem
import TillTransport

/// The names of this process's threads, as the kernel knows them.
private func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// The calling thread's name, as the kernel knows it.
private func currentThreadName() -> String? {
    (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("A reader on a thread of its own", .timeLimit(.minutes(1)))
struct DedicatedThreadTests {
    @Test("a pty read blocks on the dedicated thread and the code after it runs there too; the thread is gone once run returns")
    func readsOnItsThread() async throws {
        let name = "till-dt-\(UInt16.random(in: 0...9999))"
        let thread = DedicatedThread(name: name)
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        let port = try SerialPort.open(pty.devicePath, settings: SerialSettings(baud: 9600))
        let received = try await thread.run { () async throws -> [String] in
            var seen: [String] = []
            for scan in ["4006381333931", "96385074"] {
                _ = try pty.controller.write(Array((scan + "\r").utf8)[...])
                var bytes: [UInt8] = []
                while bytes.last != 0x0D {
                    let chunk = try #require(try port.readBlocking(maxCount: 64, timeout: .seconds(5)), "a descriptor stream reads blocking")
                    try #require(!chunk.isEmpty, "the scan arrived")
                    bytes += chunk
                }
                // Both the blocking read and what follows it ran on the reader's own thread.
                #expect(currentThreadName() == name)
                seen.append(String(decoding: bytes.dropLast(), as: UTF8.self))
                try await Task.sleep(for: .milliseconds(10))  // a suspension comes back to the same thread
            }
            #expect(threadNames().contains(name))
            return seen
        }
        #expect(received == ["4006381333931", "96385074"])
        await port.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while threadNames().contains(name), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!threadNames().contains(name), "no thread left behind after run")
    }

    @Test("a blocking read waiting for hours ends at once when its waits are cancelled; close then closes")
    func cancelledWait() async throws {
        let thread = DedicatedThread(name: "till-dt-cancel")
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        let port = try SerialPort.open(pty.devicePath, settings: SerialSettings(baud: 9600))
        let reading = Task {
            try await thread.run {
                try await withTaskCancellationHandler {
                    try port.readBlocking(maxCount: 64, timeout: .seconds(3600))
                } onCancel: {
                    port.cancelWaits()
                }
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        reading.cancel()
        #expect(try await reading.value == [], "woken, as if its time ran out")
        #expect(ContinuousClock.now - start < .seconds(30))
        await port.close()
        #expect(throws: TransportError.self) { _ = try port.readBlocking(maxCount: 64, timeout: .seconds(1)) }
    }
}
