import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TillCore
public import TillDevices

/// The print spool: a job is accepted only once it is in the journal database, printed
/// once per printer in order, kept queued while the printer is not ready (paper out, cover
/// open), and never printed twice: a job interrupted by a crash is failed, not repeated.
public final class PrintSpool: Service, Sendable {
    private let journal: Journal
    private let manager: DeviceManager
    private let sink: BusEventSink
    private let logger: Logger
    private let bells: [String: (stream: AsyncStream<Void>, ring: AsyncStream<Void>.Continuation)]

    public init(journal: Journal, manager: DeviceManager, sink: BusEventSink, logger: Logger) {
        self.journal = journal
        self.manager = manager
        self.sink = sink
        self.logger = logger
        var bells: [String: (AsyncStream<Void>, AsyncStream<Void>.Continuation)] = [:]
        for device in manager.devices where device is any ReceiptPrinter {
            bells[device.info.name] = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }
        self.bells = bells
        // A printer that comes back (paper loaded, cover shut) wakes its worker.
        sink.observeStateChanges { [bells = self.bells] device in bells[device]?.ring.yield() }
    }

    /// Wakes a printer's worker (new job, or the printer's state changed).
    public func wake(_ device: String) {
        bells[device]?.ring.yield()
    }

    /// Spools a job durably and returns its id ("J" + number).
    public func submit(_ payload: PrintPayload, to printer: any TillDevice) async throws -> String {
        guard printer is any ReceiptPrinter else {
            throw WireError(.badRequest, "device \"\(printer.info.name)\" is not a printer")
        }
        let (kind, bytes): (String, Data)
        switch payload {
        case .receipt(_, let source): (kind, bytes) = ("receipt", Data(JSONText.encode(source).utf8))
        case .raw(let raw): (kind, bytes) = ("raw", raw)
        }
        let id = try await journal.spool(device: printer.info.name, kind: kind, payload: bytes)
        let job = "J\(id)"
        await sink.emit(.printerJob(job: job, state: .queued, error: nil), device: printer.info.name)
        wake(printer.info.name)
        return job
    }

    public func cancel(_ job: String) async throws {
        guard let id = Self.jobNumber(job), let stored = try await journal.job(id: id) else {
            throw WireError(.notFound, "no print job \"\(job)\"", details: ["job": .string(job)])
        }
        if try await journal.transition(job: id, from: ["queued"], to: "cancelled") {
            await sink.emit(.printerJob(job: job, state: .cancelled, error: nil), device: stored.device)
            return
        }
        let now = try await journal.job(id: id)?.state ?? stored.state
        if now == "printing" { throw WireError(.busy, "job \(job) is printing and cannot be cancelled") }
        throw WireError(.badRequest, "job \(job) is already \(now)")
    }

    public func run() async throws {
        for id in try await journal.failInterruptedJobs() {
            logger.warning("print job was interrupted by a restart and is not reprinted", metadata: ["job": "J\(id)"])
            if let job = try await journal.job(id: id) {
                await sink.emit(.printerJob(job: "J\(id)", state: .failed, error: job.error ?? "interrupted"), device: job.device)
            }
        }
        try await withThrowingDiscardingTaskGroup { group in
            // Stay up until shutdown even when no device has long-running work.
            group.addTask { try? await gracefulShutdown() }
            for device in manager.devices {
                guard let printer = device as? any ReceiptPrinter, let bell = bells[device.info.name] else { continue }
                group.addTask {
                    await cancelWhenGracefulShutdown {
                        await self.work(printer, bell: bell.stream)
                    }
                }
            }
        }
    }

    /// One printer's worker: prints queued jobs in order whenever woken.
    private func work(_ printer: any ReceiptPrinter, bell: AsyncStream<Void>) async {
        let name = printer.info.name
        wake(name)  // jobs left queued by the previous run
        for await _ in bell {
            while !Task.isCancelled, printer.status.state == .online {
                do {
                    guard let job = try await journal.nextQueuedJob(device: name) else { break }
                    if try await !print(job, on: printer) { break }
                } catch {
                    // Most likely the journal (the spool shares its database) cannot commit:
                    // look again in a second, so queued jobs print once it is back.
                    logger.error("print spool cannot read or update its jobs; retrying in 1 s", metadata: ["device": "\(name)", "error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                    wake(name)
                    break
                }
            }
        }
    }

    /// Returns false if the printer was not ready (the job stays queued).
    private func print(_ job: Journal.SpooledJob, on printer: any ReceiptPrinter) async throws -> Bool {
        let name = printer.info.name
        let jobID = "J\(job.id)"
        guard try await journal.transition(job: job.id, from: ["queued"], to: "printing") else { return true }
        await sink.emit(.printerJob(job: jobID, state: .printing, error: nil), device: name)
        var openDrawer = false
        do {
            let payload: PrintPayload
            if job.kind == "receipt" {
                let source = try JSONText.decode(job.payload)
                let document = try ReceiptDocument(json: source)
                openDrawer = document.openDrawer
                payload = .receipt(document, source: source)
            } else {
                payload = .raw(job.payload)
            }
            try await printer.print(PrintJob(id: jobID, payload: payload), events: sink)
        } catch let error as DeviceError where error.kind == .notReady {
            _ = try await journal.transition(job: job.id, from: ["printing"], to: "queued")
            await sink.emit(.printerJob(job: jobID, state: .queued, error: error.message), device: name)
            return false
        } catch {
            let message = (error as? DeviceError)?.message ?? "\(error)"
            _ = try await journal.transition(job: job.id, from: ["printing"], to: "failed", error: message)
            await sink.emit(.printerJob(job: jobID, state: .failed, error: message), device: name)
            logger.error("print job failed", metadata: ["job": "\(jobID)", "device": "\(name)", "error": "\(message)"])
            return true
        }
        _ = try await journal.transition(job: job.id, from: ["printing"], to: "done")
        await sink.emit(.printerJob(job: jobID, state: .done, error: nil), device: name)
        if openDrawer {
            do {
                if let drawer = try manager.resolve(nil, role: .drawer) as? any CashDrawer { try await drawer.open(events: sink) }
            } catch {
                logger.error("receipt asked to open the drawer, which failed", metadata: ["job": "\(jobID)", "error": "\(error)"])
            }
        }
        return true
    }

    static func jobNumber(_ job: String) -> Int64? {
        guard job.hasPrefix("J") else { return nil }
        return Int64(job.dropFirst())
    }
}
