public import NIOCore

/// One inbound frame: a complete line (without `\n` or a trailing `\r`), or the notice
/// that a line grew past the limit (the connection is then answered and closed).
public enum InboundFrame: Sendable {
    case line(ByteBuffer)
    case tooLong(limit: Int)
}

/// Splits the byte stream into lines, refusing to buffer more than `maxLength` bytes
/// for one line: a client cannot make the daemon hold an endless line in memory.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = InboundFrame
    public let maxLength: Int
    private var scanned = 0
    private var overflowed = false

    public init(maxLength: Int) {
        self.maxLength = maxLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if overflowed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        let view = buffer.readableBytesView
        if let newline = view[view.startIndex.advanced(by: scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            scanned = 0
            guard length <= maxLength else { return overflow(context, &buffer) }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line.moveWriterIndex(to: line.writerIndex - 1) }
            context.fireChannelRead(Self.wrapInboundOut(.line(line)))
            return .continue
        }
        scanned = view.count
        if view.count > maxLength { return overflow(context, &buffer) }
        return .needMoreData
    }

    private mutating func overflow(_ context: ChannelHandlerContext, _ buffer: inout ByteBuffer) -> DecodingState {
        overflowed = true
        scanned = 0
        buffer.moveReaderIndex(to: buffer.writerIndex)
        context.fireChannelRead(Self.wrapInboundOut(.tooLong(limit: maxLength)))
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A half line at disconnect is dropped: it was never a request.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
