import Testing
@testable import TillESCPOS

@Suite("printer status bytes")
struct StatusTests {
    @Test("DLE EOT replies, in the order the queries went out")
    func realTime() {
        var reader = StatusReader()
        for query in StatusQuery.allCases { reader.sent(query) }
        let changed = reader.receive([0x12, 0x12, 0x12, 0x12])
        #expect(changed, "the drawer pin level is known now")
        #expect(reader.state.drawerPinHigh == false && reader.pending.isEmpty)
        #expect(reader.state.canPrint)
        for query in [StatusQuery.printer, .offlineCause, .paper] { reader.sent(query) }
        // Offline; cover open; paper end.
        let offline = reader.receive([0x1A, 0x16, 0x72])
        #expect(offline)
        #expect(!reader.state.online && reader.state.coverOpen && reader.state.paper == .out)
        #expect(reader.state.problem == "cover open: close the printer cover")
        reader.sent(.paper)
        reader.receive([0x1E])
        #expect(reader.state.paper == .nearEnd)
        reader.sent(.errorCause)
        reader.receive([0x1A])
        #expect(reader.state.error?.contains("auto-cutter") == true)
    }

    @Test("Automatic Status Back blocks are told from replies by their fixed bits")
    func automatic() {
        var reader = StatusReader()
        reader.sent(.printer)
        // An ASB block (cover open, paper end) arrives before the reply to the query.
        let coverOpen = reader.receive([0x30, 0x00, 0x0C, 0x00, 0x16])
        #expect(coverOpen)
        #expect(reader.state.coverOpen && reader.state.paper == .out && reader.state.drawerPinHigh == true)
        #expect(reader.pending.isEmpty)
        reader.receive([0x10, 0x00, 0x00, 0x00])
        #expect(reader.state.canPrint && reader.state.drawerPinHigh == false)
    }

    @Test("stray bytes are counted, never taken as a status")
    func noise() {
        var reader = StatusReader()
        let changed = reader.receive([0xFF, 0x41, 0x12])
        #expect(!changed)
        #expect(reader.ignoredBytes == 3, "a reply byte with no query pending is noise too")
    }
}
