import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TillCore
public import TillDevices
import TillESCPOS

/// The print spool: a job is accepted only once it is in the journal database (as the bytes
/// the printer gets), printed once per printer in order, kept queued while the printer is not
/// ready (paper out, cover open, unplugged), and never printed twice: a job marked done is
/// never sent again, and a job cut off part-way (an unplug, a crash) is printed again whole
/// under a REPRINT banner, never as a silent second copy or half a receipt twice.
public final class PrintSpool: Service, Sendable {
    private let journal: Journal
    private let manager: DeviceManager
    private let sink: BusEventSink
    private let logger: Logger
    /// One worker per printer name, each woken by its bell. A printer taken on after start
    /// (zero config, a reload) gets its worker then; a printer replaced under the same name is
    /// found by the worker at its next look, so its queue goes on.
    private typealias Bell = (stream: AsyncStream<Void>, ring: AsyncStream<Void>.Continuation)
    private let bells = Mutex<[String: Bell]>([:])
    private let newWorkers: AsyncStream<String>
    private let startWorker: AsyncStream<String>.Continuation

    public init(journal: Journal, manager: DeviceManager, sink: BusEventSink, logger: Logger) {
        self.journal = journal
        self.manager = manager
        self.sink = sink
        self.logger = logger
        (newWorkers, startWorker) = AsyncStream.makeStream(of: String.self)
        bells.withLock { bells in
            for device in manager.devices where device is any ReceiptPrinter {
                bells[device.info.name] = Self.bell()
            }
        }
        // A printer that comes back (paper loaded, cover shut, plugged in again) wakes its worker.
        sink.observeStateChanges { [weak self] device in self?.wake(device) }
        manager.observeAdoptions { [weak self] device in
            guard device is any ReceiptPrinter, let self else { return }
            let new = self.bells.withLock { bells -> Bool in
                guard bells[device.info.name] == nil else { return false }
                bells[device.info.name] = Self.bell()
                return true
            }
            if new { self.startWorker.yield(device.info.name) } else { self.wake(device.info.name) }
        }
    }

    private static func bell() -> Bell {
        let (stream, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        return (stream, ring)
    }

    /// Wakes a printer's worker (new job, or the printer's state changed).
    public func wake(_ device: String) {
        _ = bells.withLock { $0[device] }?.ring.yield()
    }

    /// A spooled job: its id ("J" + number) and what had to give way to the printer (a QR code
    /// printed as a picture, a character transliterated), said in the `print` reply.
    public struct Submitted: Sendable {
        public var job: String
        public var notes: [String]
    }

    /// Encodes a receipt for the printer (once, here: a receipt the printer cannot take is a
    /// `bad_request` naming the line, and nothing is spooled), spools the bytes durably and
    /// returns the job's id.
    public func submit(_ payload: PrintPayload, to device: any TillDevice) async throws -> Submitted {
        guard let printer = device as? any ReceiptPrinter else {
            throw WireError(.badRequest, "device \"\(device.info.name)\" is not a printer")
        }
        let kind: String
        let bytes: [UInt8]
        var notes: [String] = []
        var drawerFallback = false
        switch payload {
        case .receipt(let document):
            let encoded: EncodedReceipt
            do {
                encoded = try printer.encoder.encode(document)
            } catch {
                throw WireError.badRequest(field: error.field, error.message)
            }
            (kind, bytes, notes) = ("receipt", encoded.bytes, encoded.notes)
            drawerFallback = document.openDrawer && !encoded.opensDrawer
        case .raw(let raw):
            (kind, bytes) = ("raw", Array(raw))
        }
        let id = try await journal.spool(device: printer.info.name, kind: kind, payload: Data(bytes), drawerFallback: drawerFallback)
        let job = "J\(id)"
        await sink.emit(.printerJob(job: job, state: .queued, error: nil), device: printer.info.name)
        wake(printer.info.name)
        return Submitted(job: job, notes: notes)
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
        for id in try await journal.requeueJobsInterruptedByRestart() {
            logger.warning("print job was interrupted by a restart; it prints again in full under a REPRINT banner", metadata: ["job": "J\(id)"])
            if let job = try await journal.job(id: id) {
                await sink.emit(.printerJob(job: "J\(id)", state: .queued, error: job.error ?? "interrupted"), device: job.device)
            }
        }
        // Printers are opened (prepared) before they are announced: only then does a worker's
        // first look find them ready, and jobs left queued by the last run print at once.
        await manager.announced()
        try await withThrowingDiscardingTaskGroup { group in
            // Stay up until shutdown even when no device has long-running work; then no new workers.
            group.addTask { [startWorker] in
                try? await gracefulShutdown()
                startWorker.finish()
            }
            for (name, bell) in bells.withLock({ $0 }) {
                group.addTask { await cancelWhenGracefulShutdown { await self.work(name, bell: bell.stream) } }
            }
            for await name in newWorkers {
                guard let bell = bells.withLock({ $0[name] }) else { continue }
                group.addTask { await cancelWhenGracefulShutdown { await self.work(name, bell: bell.stream) } }
            }
        }
    }

    /// One printer's worker: prints queued jobs in order whenever woken, on the device of that
    /// name as it is now (none while a reload has removed it: the jobs wait).
    private func work(_ name: String, bell: AsyncStream<Void>) async {
        wake(name)  // jobs left queued by the previous run
        for await _ in bell {
            while !Task.isCancelled, let printer = manager.device(named: name) as? any ReceiptPrinter, printer.status.state == .online {
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
        do {
            var bytes = try bytes(of: job, for: printer)
            if job.interrupted { bytes = printer.encoder.reprintBanner(job: jobID) + bytes }
            try await printer.print(PrintJob(id: jobID, bytes: bytes), events: sink)
        } catch let error as DeviceError where error.kind == .notReady {
            _ = try await journal.transition(job: job.id, from: ["printing"], to: "queued")
            await sink.emit(.printerJob(job: jobID, state: .queued, error: error.message), device: name)
            return false
        } catch let error as DeviceError where error.kind == .interrupted {
            _ = try await journal.requeueInterrupted(job: job.id, error: error.message)
            await sink.emit(.printerJob(job: jobID, state: .queued, error: error.message), device: name)
            logger.warning("print job cut off part-way; it prints again in full under a REPRINT banner", metadata: ["job": "\(jobID)", "device": "\(name)", "error": "\(error.message)"])
            return false
        } catch {
            let message = (error as? DeviceError)?.message ?? (error as? WireError)?.message ?? "\(error)"
            _ = try await journal.transition(job: job.id, from: ["printing"], to: "failed", error: message)
            await sink.emit(.printerJob(job: jobID, state: .failed, error: message), device: name)
            logger.error("print job failed", metadata: ["job": "\(jobID)", "device": "\(name)", "error": "\(message)"])
            return true
        }
        _ = try await journal.transition(job: job.id, from: ["printing"], to: "done")
        await sink.emit(.printerJob(job: jobID, state: .done, error: nil), device: name)
        if job.drawerFallback {
            // The receipt asked for the drawer and this printer has no drawer port: the shop's
            // stand-alone drawer, if it has one.
            do {
                if let drawer = try manager.resolve(nil, role: .drawer) as? any CashDrawer { try await drawer.open(events: sink) }
            } catch {
                logger.error("receipt asked to open the drawer, which failed", metadata: ["job": "\(jobID)", "error": "\(error)"])
            }
        }
        return true
    }

    /// The job's bytes: as spooled, or (a job spooled by an older tilld) its document encoded now.
    private func bytes(of job: Journal.SpooledJob, for printer: any ReceiptPrinter) throws -> [UInt8] {
        guard !job.encoded, job.kind == "receipt" else { return Array(job.payload) }
        let document = try ReceiptDocument(json: try JSONText.decode(job.payload))
        return try printer.encoder.encode(document).bytes
    }

    static func jobNumber(_ job: String) -> Int64? {
        guard job.hasPrefix("J") else { return nil }
        return Int64(job.dropFirst())
    }
}
