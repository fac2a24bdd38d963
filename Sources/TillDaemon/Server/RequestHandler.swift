import TillLinux
import NIOCore
import Foundation
import Logging
import TillCore
import TillSQLite
import TillDevices
import TillDrivers
import TillSystem

/// Carries out requests for one session: `admit` and `publishNow` on the connection's event
/// loop, everything that may wait in `handle`, on the connection's task.
struct RequestHandler: Sendable {
    let context: DaemonContext
    static let badRequestLog = LogRateLimiter(burst: 10, per: .seconds(10))

    /// Decodes a request line and checks the peer may make it. A line that fails either is
    /// answered here (nil); runs on the connection's event loop, so it never waits.
    func admit(_ line: ByteBufferView, session: Session) -> Request? {
        switch RequestDecoder.decode(line) {
        case .failure(let failure):
            // A client in a loop sending garbage must not fill the journal of the box's logs.
            if let suppressed = Self.badRequestLog.admit() {
                var metadata: Logger.Metadata = ["peer": "\(session.peer)", "error": "\(failure.error)"]
                if suppressed > 0 { metadata["suppressed_before"] = "\(suppressed)" }
                context.logger.notice("bad request", metadata: metadata)
            }
            session.send(ServerMessage.error(id: failure.id, failure.error))
            return nil
        case .success(let request):
            let policy = context.config.policy
            guard policy.permits(request.operation.permission, session.peer) else {
                let message = policy.refusal(request.operation.name, request.operation.permission, session.peer, configPath: context.config.path)
                context.logger.warning(
                    "forbidden",
                    metadata: ["op": "\(request.operation.name)", "uid": "\(session.peer.credentials.uid)", "pid": "\(session.peer.credentials.pid)", "user": "\(session.peer.userName ?? "?")"]
                )
                session.send(ServerMessage.error(id: request.id, WireError(.forbidden, message)))
                return nil
            }
            return request
        }
    }

    /// Hands a `publish` to the bus without waiting (true), so the next request is read while
    /// this one commits and pipelined publishes share a transaction; the reply waits in the
    /// outbox, in order. Runs on the event loop. False for every other op.
    ///
    /// `held`: on the event loop, during a read; the loop commits the read's publishes at its
    /// end (`EventBus.commitHeld`).
    func publishNow(_ request: Request, session: Session, held: Bool = false) -> Bool {
        guard case .publish(let topic, let data) = request.operation else { return false }
        let reply = session.outbox.deferReply()
        let id = request.id
        let devices = context.devices
        context.bus.submit(topic: topic, data: data, held: held) { result in
            switch result {
            case .success(let event):
                reply.fulfil(ServerMessage.published(id: id, seq: event.seq))
                devices.published(topic: topic, data: data)
            case .failure(let error as WireError): reply.fulfil(ServerMessage.error(id: id, error))
            case .failure(is EventBus.Draining): reply.fulfil(ServerMessage.error(id: id, WireError(.busy, "tilld is shutting down; retry once it is back")))
            case .failure(let error): reply.fulfil(ServerMessage.error(id: id, WireError(.deviceError, "\(error)")))
            }
        }
        return true
    }

    /// The bus, for the connection's event loop to commit a read's held publishes.
    var bus: EventBus { context.bus }

    /// Carries out an admitted request and queues exactly one reply (a connection's requests
    /// run one at a time, in order, on the connection's task).
    func handle(_ request: Request, session: Session) async {
        if publishNow(request, session: session) { return }
        if case .subscribe(let topics, let since) = request.operation {
            await subscribe(request.id, topics: topics, since: since, session: session)
            return
        }
        do {
            let result = try await perform(request.operation, session: session)
            session.send(ServerMessage.ok(id: request.id, result: result))
        } catch let error as WireError {
            session.send(ServerMessage.error(id: request.id, error))
        } catch let error as DeviceError {
            context.logger.warning("device error", metadata: ["op": "\(request.operation.name)", "error": "\(error)"])
            session.send(ServerMessage.error(id: request.id, error.wireError))
        } catch is EventBus.Draining {
            session.send(ServerMessage.error(id: request.id, WireError(.busy, "tilld is shutting down; retry once it is back")))
        } catch {
            context.logger.error("request failed", metadata: ["op": "\(request.operation.name)", "error": "\(error)"])
            session.send(ServerMessage.error(id: request.id, WireError(.deviceError, "\(error)")))
        }
    }

    private func subscribe(_ id: JSONValue, topics: [String], since: Int64?, session: Session) async {
        let filter = TopicFilter(topics)
        guard let since else {
            _ = session.nextGeneration(active: true)
            context.bus.unsubscribe(id: session.id)
            context.bus.subscribeLive(id: session.id, outbox: session.outbox, filter: filter) { seq in
                session.send(ServerMessage.ok(id: id, result: ["seq": .int(seq)]))
            }
            return
        }
        let latest = context.bus.lastSeq
        if since > latest {
            session.send(ServerMessage.error(id: id, WireError.badRequest(
                field: "since", "\(since) is ahead of the journal (latest seq is \(latest)); was the state directory reset? subscribe without since, or with since \(latest)")))
            return
        }
        do {
            let oldest = try await context.journal.oldestSeq() ?? (context.bus.lastSeq + 1)
            if since + 1 < oldest {
                session.send(ServerMessage.error(id: id, WireError(
                    .journalTruncated,
                    "events after \(since) are no longer in the journal; the oldest held is \(oldest). Resynchronise, then subscribe with since \(oldest - 1)",
                    details: ["oldest": .int(oldest)])))
                return
            }
        } catch {
            session.send(ServerMessage.error(id: id, WireError(.deviceError, "journal read failed: \(error)")))
            return
        }
        let generation = session.nextGeneration(active: true)
        context.bus.unsubscribe(id: session.id)
        session.send(ServerMessage.ok(id: id, result: ["seq": .int(latest), "replay_from": .int(since)]))
        session.outbox.enqueue(.replay(Subscription(generation: generation, filter: filter, since: since)))
    }

    private func perform(_ operation: SocketOperation, session: Session) async throws -> JSONValue {
        // Every act op's effect is an event (a job state, a drawer opening, what a display
        // shows): while the journal cannot commit, none is carried out, so nothing happens that
        // the journal does not record. (`publish` is refused by the bus itself.)
        if operation.permission == .act { try context.bus.requireHealthy() }
        switch operation {
        case .subscribe:
            preconditionFailure("handled before")
        case .unsubscribe:
            _ = session.nextGeneration(active: false)
            context.bus.unsubscribe(id: session.id)
            return [:]
        case .devices:
            // The devices tilld drives; then (an extension) every device plugged in, with what
            // tilld made of it and why.
            var result: [String: JSONValue] = ["devices": .array(context.devices.devices.map(\.listing))]
            if let hotplug = context.hotplug { result["seen"] = .array(hotplug.sightings().map(\.listing)) }
            return .object(result)
        case .status:
            return try await status(session: session)
        case .followerAck(let follower, let seq, let topics):
            let latest = context.bus.lastSeq
            guard seq <= latest else {
                throw WireError.badRequest(field: "seq", "\(seq) is ahead of the journal (latest seq is \(latest)): acknowledge only seqs you were sent")
            }
            try await context.journal.acknowledge(follower: follower, seq: seq, topics: topics, atMs: Int64(Date().timeIntervalSince1970 * 1000))
            return [:]
        case .publish:
            preconditionFailure("handled before")
        case .print(let name, let payload):
            let printer = try context.devices.resolve(name, role: .printer)
            let job: PrintSpool.Submitted
            do {
                job = try await context.spool.submit(payload, to: printer)
            } catch let error as WireError {
                throw error
            } catch {
                // The spool shares the journal's database: a spool write that fails (the journal
                // broke after the check above) is a journal fault.
                throw JournalFault.classify(error, journalPath: context.journal.path).wireError
            }
            if job.notes.isEmpty { return ["job": .string(job.job)] }
            return ["job": .string(job.job), "notes": .array(job.notes.map(JSONValue.string))]
        case .printCancel(let job):
            try await context.spool.cancel(job)
            return [:]
        case .drawerOpen(let name, let sale):
            let device = try context.devices.resolve(name, role: .drawer)
            guard let drawer = device as? any CashDrawer else {
                throw WireError(.deviceError, "device \"\(device.info.name)\" cannot open a drawer: \(device.status.reason ?? "its driver has no drawer")", details: ["device": .string(device.info.name)])
            }
            try ready(drawer)
            // A kick into a drawer already open (or one just kicked) is refused by the drawer's
            // driver (DrawerWatch), as `busy`, and is not in the audit trail.
            try await drawer.open(events: context.sink)
            // The audit trail: who asked, from the kernel's credentials, and for which sale.
            let peer = session.peer
            await context.sink.emit(
                .drawerKicked(uid: peer.credentials.uid, user: peer.userName, pid: peer.credentials.pid, sale: sale), device: device.info.name)
            return [:]
        case .display(let name, let content):
            let device = try context.devices.resolve(name, role: .display)
            guard let display = device as? any CustomerDisplay else {
                throw WireError(.deviceError, "device \"\(device.info.name)\" cannot show text: \(device.status.reason ?? "its driver has no display")", details: ["device": .string(device.info.name)])
            }
            try ready(display)
            try await display.show(content, events: context.sink)
            return [:]
        case .simulate(let name, let data):
            guard context.demo else {
                throw WireError(.badRequest, "simulate works in demo mode only: start tilld with --demo")
            }
            guard let device = context.devices.device(named: name) else {
                throw WireError(.notFound, "no device named \"\(name)\"", details: ["device": .string(name)])
            }
            guard let simulated = device as? any SimulatedDevice else {
                throw WireError(.badRequest, "device \"\(name)\" takes no simulated input (sim-scanner, sim-printer and sim-drawer do)")
            }
            try await simulated.simulate(data, events: context.sink)
            return [:]
        }
    }

    private func ready(_ device: any TillDevice) throws {
        let status = device.status
        guard status.state == .online else {
            throw DeviceError(device: device.info.name, .notReady, status.reason ?? "device is \(status.state.rawValue)")
        }
    }

    private func status(session: Session) async throws -> JSONValue {
        // Status must answer when the journal is in trouble: that is when it is asked.
        let oldest = try? await context.journal.oldestSeq()
        let queued = try? await context.journal.queuedJobCount()
        var devices: [String: JSONValue] = [:]
        for device in context.devices.devices { devices[device.info.name] = device.status.json }
        let health = context.bus.health
        var journal: [String: JSONValue] = [
            "oldest": oldest.map(JSONValue.int) ?? .null, "latest": .int(context.bus.lastSeq),
            "path": .string(context.journal.path), "synchronous": .string(context.journal.synchronous.description),
            "state": .string(health.fault == nil ? "ok" : "degraded"),
            "held": .int(Int64(health.held)), "dropped": .int(Int64(health.droppedTotal)),
        ]
        if let fault = health.fault {
            journal["problem"] = .string(fault.message)
            journal["cause"] = .string(fault.cause.rawValue)
            journal["since"] = health.since.map { .string(Timestamp.format($0)) } ?? .null
            journal["refused"] = .int(Int64(health.refused))
            journal["fix"] = .string(fault.fix)
        }
        let config = context.config.config
        let followers = ((try? await context.journal.followers()) ?? []).map { follower -> JSONValue in
            let horizon = FollowerHorizon(
                followerSeq: follower.seq, pending: follower.pending, firstPendingMs: follower.firstPendingMs,
                firstPendingSeq: follower.firstPendingSeq, oldestSeq: oldest ?? nil, latestSeq: context.bus.lastSeq, now: Date(),
                retainDays: config.retainDays, retainEvents: config.retainEvents)
            return [
                "name": .string(follower.name), "seq": .int(follower.seq),
                "acked": .string(Timestamp.format(Date(timeIntervalSince1970: Double(follower.ackedMs) / 1000))),
                "behind": .int(horizon.behind), "topics": .array(follower.topics.map(JSONValue.string)), "state": .string(horizon.state.rawValue),
                "pruned_at": horizon.prunedAt.map { .string(Timestamp.format($0)) } ?? .null,
                "events_left": horizon.eventsLeft.map(JSONValue.int) ?? .null,
            ]
        }
        return [
            "version": .string(context.version),
            "followers": .array(followers),
            "stream": context.stream.map(JSONValue.string) ?? .null,
            "uptime_seconds": .int(Int64(Date().timeIntervalSince(context.startedAt))),
            "seq": .int(context.bus.lastSeq),
            "degraded": .bool(health.fault != nil),
            "journal": .object(journal),
            "subscribers": .int(Int64(context.bus.subscriberCount)),
            "print_queue": queued.map { .int(Int64($0)) } ?? .null,
            "demo": .bool(context.demo),
            "devices": .object(devices),
            // Extensions for tillctl doctor: who tilld runs as (can it open the device nodes?),
            // what the caller may do, and the config file in force.
            "daemon": [
                "uid": .int(Int64(UserDirectory.currentUserID)), "user": UserDirectory.userName(uid: UserDirectory.currentUserID).map(JSONValue.string) ?? .null,
                "gids": .array(UserDirectory.currentGroupIDs.sorted().map { .int(Int64($0)) }),
            ],
            "peer": [
                "uid": .int(Int64(session.peer.credentials.uid)), "user": session.peer.userName.map(JSONValue.string) ?? .null,
                "may": context.config.policy.granted(to: session.peer).map { .string($0 == .act ? "act" : "read") } ?? .null,
            ],
            "config": .string(context.config.path),
        ]
    }
}
