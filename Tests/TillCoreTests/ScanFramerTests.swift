import Testing
import TillScanner

@Suite("Scan framing (serial scanners)")
struct ScanFramerTests {
    private func scans(_ outputs: [ScanFramerOutput]) -> [String] {
        outputs.compactMap { if case .scan(let frame) = $0 { frame.text } else { nil } }
    }

    private func problems(_ outputs: [ScanFramerOutput]) -> [ScanFramingProblem] {
        outputs.compactMap { if case .problem(let problem) = $0 { problem } else { nil } }
    }

    @Test("CR, LF and CR LF each end one scan; bytes split across reads join up")
    func enter() {
        var framer = ScanFramer(framing: ScanFraming(terminator: .enter))
        #expect(scans(framer.feed(Array("4006381".utf8))).isEmpty)
        #expect(scans(framer.feed(Array("333931\r\n96385074\n12345\r\r".utf8))) == ["4006381333931", "96385074", "12345"])
        #expect(!framer.hasPending)
    }

    @Test("tab as terminator; with none, a quiet line ends the scan")
    func tabAndNone() {
        var tab = ScanFramer(framing: ScanFraming(terminator: .tab))
        #expect(scans(tab.feed(Array("ABC\tDEF\t".utf8))) == ["ABC", "DEF"])
        var none = ScanFramer(framing: ScanFraming(terminator: .none))
        #expect(scans(none.feed(Array("ABC\r".utf8))).isEmpty, "with no terminator, CR is data")
        #expect(scans(none.lineWentQuiet()) == ["ABC\r"])
        #expect(none.lineWentQuiet().isEmpty)
    }

    @Test("with a terminator configured, a scan cut off by a quiet line is dropped, not sent half")
    func partialDropped() {
        var framer = ScanFramer(framing: ScanFraming(terminator: .enter))
        _ = framer.feed(Array("40063".utf8))
        #expect(framer.lineWentQuiet().isEmpty)
        #expect(scans(framer.feed(Array("12345\r".utf8))) == ["12345"])
    }

    @Test("prefix, suffix and the AIM identifier are removed; a missing affix is said and the scan still given")
    func affixes() {
        var framer = ScanFramer(framing: ScanFraming(terminator: .enter, prefix: Array("<".utf8), suffix: Array(">".utf8), aim: true))
        let outputs = framer.feed(Array("<]E04006381333931>\r".utf8))
        guard case .scan(let frame)? = outputs.first else { Issue.record("\(outputs)"); return }
        #expect(frame.text == "4006381333931" && frame.aim == "]E0" && frame.data == Array("4006381333931".utf8))
        let missing = framer.feed(Array("12345\r".utf8))
        #expect(problems(missing) == [.missingAffix])
        #expect(scans(missing) == ["12345"], "the scan is not lost")
        #expect(problems(framer.feed(Array("<>\r".utf8))) == [.empty])
    }

    @Test("a scan longer than the limit is discarded up to its terminator, and the next one is fine")
    func tooLong() {
        var framer = ScanFramer(framing: ScanFraming(terminator: .enter, maxLength: 8))
        let outputs = framer.feed(Array("0123456789ABCDEF\r42\r".utf8))
        #expect(problems(outputs) == [.tooLong(discarded: 16)])
        #expect(scans(outputs) == ["42"])
    }

    @Test("bytes that are not UTF-8 are read as ISO-8859-1, never dropped")
    func latin1() {
        var framer = ScanFramer(framing: ScanFraming(terminator: .enter))
        #expect(scans(framer.feed([0x4D, 0xFC, 0x6C, 0x6C, 0x65, 0x72, 0x0D])) == ["Müller"])
        #expect(scans(framer.feed(Array("Müller\r".utf8))) == ["Müller"])
    }
}
