import Foundation
import Testing
import TillTransportTesting
@testable import TillCore

@Suite("Request decoding", .timeLimit(.minutes(1)))
struct RequestDecoderTests {
    private func decode(_ line: String) -> Result<Request, RequestDecoder.Failure> {
        RequestDecoder.decode(Array(line.utf8))
    }

    @Test("valid requests decode to their ops")
    func valid() throws {
        let subscribe = try decode(#"{"id":1,"op":"subscribe","topics":["scanner.*"],"since":5}"#).get()
        #expect(subscribe.operation == .subscribe(topics: ["scanner.*"], since: 5))
        #expect(subscribe.id == .int(1))
        #expect(try decode(#"{"id":"a","op":"subscribe"}"#).get().operation == .subscribe(topics: ["*"], since: nil))
        #expect(try decode(#"{"id":2,"op":"devices"}"#).get().operation.permission == .read)
        #expect(try decode(#"{"id":3,"op":"drawer.open"}"#).get().operation == .drawerOpen(device: nil, sale: nil))
        #expect(try decode(#"{"id":4,"op":"drawer.open","sale":"S7"}"#).get().operation == .drawerOpen(device: nil, sale: "S7"))
        #expect(try decode(#"{"id":4,"op":"display","clear":true}"#).get().operation == .display(device: nil, content: .clear))
        let print = try decode(#"{"id":5,"op":"print","device":"p","raw":"G0A="}"#).get()
        #expect(print.operation == .print(device: "p", payload: .raw(Data([0x1B, 0x40]))))
        #expect(print.operation.permission == .act)
    }

    struct BadCase: Sendable, CustomStringConvertible {
        var line: String
        var code: ErrorCode
        var field: String?
        var id: JSONValue = .null
        var description: String { line }
    }

    static let badCases: [BadCase] = [
        BadCase(line: "not json", code: .badRequest),
        BadCase(line: "{\"id\":1,\"op\":", code: .badRequest),
        BadCase(line: "[1,2,3]", code: .badRequest),
        BadCase(line: "42", code: .badRequest),
        BadCase(line: "\"subscribe\"", code: .badRequest),
        BadCase(line: "{}", code: .badRequest, field: "id"),
        BadCase(line: #"{"op":"status"}"#, code: .badRequest, field: "id"),
        BadCase(line: #"{"id":{"a":1},"op":"status"}"#, code: .badRequest, field: "id", id: ["a": 1]),
        BadCase(line: #"{"id":1}"#, code: .badRequest, field: "op", id: 1),
        BadCase(line: #"{"id":1,"op":7}"#, code: .badRequest, field: "op", id: 1),
        BadCase(line: #"{"id":1,"op":"explode"}"#, code: .unknownOp, id: 1),
        BadCase(line: #"{"id":1,"op":"subscribe","topics":"scanner.*"}"#, code: .badRequest, field: "topics", id: 1),
        BadCase(line: #"{"id":1,"op":"subscribe","topics":[1]}"#, code: .badRequest, field: "topics[0]", id: 1),
        BadCase(line: #"{"id":1,"op":"subscribe","since":"5"}"#, code: .badRequest, field: "since", id: 1),
        BadCase(line: #"{"id":1,"op":"subscribe","since":-1}"#, code: .badRequest, field: "since", id: 1),
        BadCase(line: #"{"id":1,"op":"publish","data":{}}"#, code: .badRequest, field: "topic", id: 1),
        BadCase(line: #"{"id":1,"op":"publish","topic":"sale.started"}"#, code: .badRequest, field: "data", id: 1),
        BadCase(line: #"{"id":1,"op":"publish","topic":"Sale Started","data":{}}"#, code: .badRequest, field: "topic", id: 1),
        BadCase(line: #"{"id":1,"op":"publish","topic":"scanner.data","data":{}}"#, code: .badRequest, field: "topic", id: 1),
        BadCase(line: #"{"id":1,"op":"publish","topic":"x.y","data":[1]}"#, code: .badRequest, field: "data", id: 1),
        BadCase(line: #"{"id":1,"op":"print"}"#, code: .badRequest, field: "receipt", id: 1),
        BadCase(line: #"{"id":1,"op":"print","raw":"!!notbase64"}"#, code: .badRequest, field: "raw", id: 1),
        BadCase(line: #"{"id":1,"op":"print","receipt":{"lines":[{"bogus":1}]}}"#, code: .badRequest, field: "receipt.lines[0]", id: 1),
        BadCase(line: #"{"id":1,"op":"print","receipt":{"lines":[{"barcode":{"type":"code999","data":"x"}}]}}"#, code: .badRequest, field: "receipt.lines[0].barcode.type", id: 1),
        BadCase(line: #"{"id":1,"op":"print","receipt":{"lines":[{"text":"a","align":"middle"}]}}"#, code: .badRequest, field: "receipt.lines[0].align", id: 1),
        BadCase(line: #"{"id":1,"op":"print","receipt":{"lines":[{"qr":{"data":"x","size":99}}]}}"#, code: .badRequest, field: "receipt.lines[0].qr.size", id: 1),
        BadCase(line: #"{"id":1,"op":"print","receipt":{"lines":[{"image":{"png":"aGVsbG8="}}]}}"#, code: .badRequest, field: "receipt.lines[0].image.png", id: 1),
        BadCase(line: #"{"id":1,"op":"print.cancel"}"#, code: .badRequest, field: "job", id: 1),
        BadCase(line: #"{"id":1,"op":"display","lines":"hello"}"#, code: .badRequest, field: "lines", id: 1),
        BadCase(line: #"{"id":1,"op":"display"}"#, code: .badRequest, field: "lines", id: 1),
        BadCase(line: #"{"id":1,"op":"drawer.open","device":5}"#, code: .badRequest, field: "device", id: 1),
        BadCase(line: #"{"id":1,"op":"simulate","device":"sim-scanner"}"#, code: .badRequest, field: "data", id: 1),
    ]

    @Test("bad input gets a clear error naming the field", arguments: badCases)
    func bad(_ badCase: BadCase) throws {
        guard case .failure(let failure) = decode(badCase.line) else {
            Issue.record("\(badCase.line) was accepted")
            return
        }
        #expect(failure.error.code == badCase.code)
        #expect(failure.id == badCase.id)
        if let field = badCase.field {
            #expect(failure.error.details?["field"] == .string(field), "\(failure.error)")
        }
        #expect(!failure.error.message.isEmpty)
    }

    @Test("a request naming a key twice is refused, saying which key and where")
    func repeatedKey() {
        guard case .failure(let failure) = decode(#"{"id":1,"op":"status","op":"drawer.open"}"#) else {
            Issue.record("a request with two ops was accepted")
            return
        }
        #expect(failure.error.code == .badRequest)
        #expect(failure.error.message.contains(#"the key "op" appears twice in one object at byte 22"#))
    }

    @Test("binary garbage is refused, and mutated requests get past the parser into the field checks", arguments: [UInt64(1), 2, 3])
    func garbage(seed: UInt64) {
        // Seeded, so a failure names an input that can be run again.
        var generator = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if case .success = RequestDecoder.decode(bytes) { Issue.record("seed \(seed): garbage accepted: \(bytes)") }
        }
        // Random bytes die at the first byte. Valid requests with a few bytes changed reach the
        // op and field validation, where the decoder has more to get wrong.
        let valid = [
            #"{"id":1,"op":"publish","topic":"sale.completed","data":{"sale":"S1","total":"9.50","currency":"EUR"}}"#,
            #"{"id":"a","op":"subscribe","topics":["scanner.*","sale.*"],"since":12}"#,
            #"{"id":2,"op":"print","device":"front","receipt":{"lines":[{"text":"hi","bold":true},{"barcode":{"type":"ean13","data":"4006381333931"}},{"cut":"partial"}]}}"#,
            #"{"id":3,"op":"display","lines":["Flat white","7.00 EUR"]}"#,
        ]
        let tokens = Array(#"{}[]",:0123456789.-eEtrufalsn\"#.utf8)
        var pastTheParser = 0
        let rounds = 2000
        for round in 0..<rounds {
            var bytes = Array(valid[round % valid.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[at] = tokens.randomElement(using: &generator)!
                case 1: bytes.insert(tokens.randomElement(using: &generator)!, at: at)
                default: bytes.remove(at: at)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            switch RequestDecoder.decode(bytes) {
            case .success(let request):
                // A mutation can stay valid ("id":1 -> "id":7); what is accepted is still a proper request.
                let idIsValid: Bool
                switch request.id {
                case .string, .int: idIsValid = true
                default: idIsValid = false
                }
                #expect(idIsValid, "seed \(seed): accepted \(String(decoding: bytes, as: UTF8.self)) with id \(request.id)")
            case .failure(let failure):
                #expect([.badRequest, .unknownOp, .tooLarge].contains(failure.error.code))
                #expect(!failure.error.message.isEmpty)
                if failure.error.details?["field"] != nil || failure.error.code == .unknownOp { pastTheParser += 1 }
            }
        }
        #expect(pastTheParser >= rounds / 10, "seed \(seed): only \(pastTheParser) of \(rounds) mutations reached the field checks")
    }

    @Test("raw print data over the limit is too_large")
    func tooLarge() {
        let raw = Data(count: RequestDecoder.maxRawPrintBytes + 1).base64EncodedString()
        guard case .failure(let failure) = decode(#"{"id":1,"op":"print","raw":"\#(raw)"}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.error.code == .tooLarge)
    }

    @Test("request lines round-trip through the encoder")
    func roundTrip() throws {
        let line = RequestEncoder.line(id: 7, op: "publish", params: ["topic": "sale.voided", "data": ["sale": "S9"]])
        let request = try decode(line).get()
        #expect(request.operation == .publish(topic: "sale.voided", data: ["sale": "S9"]))
        #expect(request.id == 7)
    }
}

