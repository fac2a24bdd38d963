import Logging
import NIOCore
import TillCore
import TillNIO

/// One client connection on its event loop: reads request lines, answers on the spot what
/// needs no waiting (a malformed or forbidden line, a `publish` handed to the bus), passes
/// every other request, in order, to the connection's task, and writes the outbox to the
/// socket as it fills.
///
/// Why on the loop: a publish used to cross four threads before its subscriber saw it (the
/// loop, a task reading requests, the journal writer, a task writing the subscriber's socket,
/// the loop again); each crossing is a wake-up, and on a two-core box wake-ups were a third of
/// the latency that was not the sync. Then it crossed two (loop → journal writer → loop); now
/// the loop commits a read's publishes itself when the journal is idle, and crosses none to
/// its own subscribers.
///
/// Everything here runs on the channel's event loop; other threads reach it through the
/// outbox's `wake` and `space` callbacks and `requestDone`/`replayDone`, which hop onto it.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = InboundFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: Session
    private let requests: RequestHandler
    private let logger: Logger
    /// Requests that may wait, for the connection's task (one at a time, in order).
    private let toTask: AsyncStream<Request>.Continuation
    /// Subscriptions whose journal replay the connection's replay task runs.
    private let toReplay: AsyncStream<Subscription>.Continuation
    private var context: ChannelHandlerContext?

    /// Requests handed to the task and not finished. While there is one, later requests
    /// queue behind it (a publish too, so effects keep request order) and reading pauses.
    private var inTask = 0
    /// NIO asked to read while reading was paused.
    private var readPending = false
    private var inputClosed = false
    /// A line over the limit was answered: nothing more is read from this client.
    private var refusing = false
    /// Publishes of this read wait for its end, to be committed as one (`channelReadComplete`).
    private var heldPublishes = false
    /// A replay owns the socket until it hands back.
    private var replaying = false
    /// The lag notice or the last item was written; nothing more goes out.
    private var writerDone = false

    init(
        session: Session, requests: RequestHandler, logger: Logger,
        toTask: AsyncStream<Request>.Continuation, toReplay: AsyncStream<Subscription>.Continuation
    ) {
        self.session = session
        self.requests = requests
        self.logger = logger
        self.toTask = toTask
        self.toReplay = toReplay
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        session.outbox.setConsumer(
            wake: { loop.execute { bound.value.drain() } },
            space: { loop.execute { bound.value.resumeReading() } }
        )
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: reading requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        switch unwrapInboundIn(data) {
        case .line(let line):
            if line.readableBytes == 0 { return }  // blank lines are keep-alives
            guard let request = requests.admit(line.readableBytesView, session: session) else { return }
            if inTask == 0, requests.publishNow(request, session: session, held: true) {
                heldPublishes = true
                return
            }
            inTask += 1
            toTask.yield(request)
        case .tooLong(let limit):
            logger.notice("line over the limit; closing", metadata: ["peer": "\(session.peer)", "limit": "\(limit)"])
            session.send(ServerMessage.error(id: .null, WireError(.tooLarge, "line longer than \(limit) bytes; the connection is closed")))
            refusing = true
            session.outbox.finish()
        }
    }

    /// The end of a read: its publishes are committed here, on the loop, when no commit is
    /// under way (one transaction for them; their replies and fan-out leave from this loop
    /// without a round trip through the journal's writer thread), else by the writer.
    /// Blocking the loop for the sync is the price, paid once per read, never per publish.
    func channelReadComplete(context: ChannelHandlerContext) {
        if heldPublishes {
            heldPublishes = false
            requests.bus.commitHeld()
        }
        context.fireChannelReadComplete()
    }

    /// NIO asks for more input after each read: granted only while no request waits on the task
    /// and the outbox is under its limit, so a client cannot queue unbounded work or replies.
    func read(context: ChannelHandlerContext) {
        if inTask > 0 || !session.outbox.hasSpace() {
            readPending = true
        } else {
            context.read()
        }
    }

    /// The connection's task finished a request.
    func requestDone() {
        inTask -= 1
        resumeReading()
        finishIfDoneReading()
    }

    func resumeReading() {
        guard let context, readPending, inTask == 0, session.outbox.hasSpace() else { return }
        readPending = false
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            finishIfDoneReading()
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A client that stops sending but is subscribed keeps receiving (`... | nc -U`); one that
    /// is not subscribed is done once its replies are written.
    private func finishIfDoneReading() {
        if inputClosed, inTask == 0, !session.isSubscribed { session.outbox.finish() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.outbox.finish()
        toTask.finish()
        toReplay.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error; closing", metadata: ["connection": "\(session.id)", "error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: writing the outbox

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what the outbox holds while the socket takes it, then flushes once (one `writev`
    /// for a burst). Stops when the socket is full (resumed by writability), at a replay (resumed
    /// by `replayDone`), or when the outbox is idle (resumed by its `wake`).
    func drain() {
        guard let context, !writerDone, !replaying else { return }
        var wrote = false
        defer { if wrote { context.flush() } }
        while context.channel.isWritable {
            switch session.outbox.poll() {
            case .idle:
                return
            case .finished:
                writerDone = true
                closeAfter(ByteBuffer(), context)
                wrote = false
                return
            case .items(let items):
                // Consecutive replies go out as one buffer: copying a few hundred bytes each is
                // cheaper than passing each line through the pipeline. Events come as runs of
                // lines in a buffer shared with every other subscriber, written as they are
                // (appending to one would copy the lot).
                var batch: ByteBuffer? = nil
                func flushBatch() {
                    if let full = batch { context.write(wrapOutboundOut(full), promise: nil) }
                    batch = nil
                }
                defer { flushBatch() }
                for item in items {
                    switch item {
                    case .line(var buffer):
                        if batch == nil {
                            batch = buffer
                        } else {
                            batch!.writeBuffer(&buffer)
                        }
                        wrote = true
                    case .event(_, let lines):
                        flushBatch()
                        context.write(wrapOutboundOut(lines), promise: nil)
                        wrote = true
                    case .deferred:
                        preconditionFailure("poll hands fulfilled replies as lines")
                    case .replay(let subscription):
                        flushBatch()
                        replaying = true
                        toReplay.yield(subscription)
                        return
                    case .lagged(let lastSent):
                        // Closed once the notice is written; the outbox's onLag also closes it
                        // after a grace period, for a client that never reads it.
                        flushBatch()
                        writerDone = true
                        closeAfter(ByteBuffer(string: ServerMessage.lagged(lastSent: lastSent) + "\n"), context)
                        wrote = false
                        return
                    }
                }
            }
        }
    }

    /// Writes a last buffer and closes once it, and so everything before it, is on the wire
    /// (writes complete in order; closing at once would drop what the socket has not taken).
    private func closeAfter(_ last: ByteBuffer, _ context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(last), promise: written)
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    /// The replay task has sent the journal up to the live stream (or given up).
    func replayDone() {
        replaying = false
        drain()
    }
}
