import NIOCore
import NIOEmbedded
import Testing
import TillNIO

@Suite("Line framing", .timeLimit(.minutes(1)))
struct LineFrameDecoderTests {
    private func frames(_ chunks: [String], max: Int = 16) throws -> [String] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maxLength: max)))
        for chunk in chunks { try channel.writeInbound(ByteBuffer(string: chunk)) }
        var out: [String] = []
        while let frame: InboundFrame = try channel.readInbound() {
            switch frame {
            case .line(let line): out.append(String(buffer: line))
            case .tooLong(let limit): out.append("<too long \(limit)>")
            }
        }
        _ = try? channel.finish()
        return out
    }

    @Test("lines split across reads, CRLF and empty lines")
    func splitting() throws {
        #expect(try frames(["ab", "c\nde\r\n", "\nf"]) == ["abc", "de", ""])
    }

    @Test("an over-long line is reported once and nothing more is read")
    func overLong() throws {
        #expect(try frames(["0123456789abcdefXYZ\nok\n"]) == ["<too long 16>"])
        #expect(try frames(["0123456789", "abcdefghij"]) == ["<too long 16>"])
    }
}
