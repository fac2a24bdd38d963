// libFuzzer target for the socket's line decoder and validator (TillCore).
// Built outside SwiftPM by Fuzz/run.sh:
//   swiftc -sanitize=fuzzer,address -parse-as-library Sources/TillCore/*.swift Fuzz/WireFuzz.swift
// Invariants checked on every input:
//   - decoding never crashes, whatever the bytes;
//   - every failure carries a code and a non-empty message;
//   - an accepted request re-encodes to a line that decodes to the same operation;
//   - whatever JSONParser accepts, Foundation's JSONDecoder accepts and reads the same, and
//     writing it back gives text that parses to the same value.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
        switch RequestDecoder.decode(line) {
        case .failure(let failure):
            precondition(!failure.error.message.isEmpty, "an error without a message")
        case .success(let request):
            checkRoundTrip(request, original: line)
        }
        checkAgainstFoundation(line)
        // The client side parses server lines with the same JSON layer.
        _ = try? ServerLine(line: line)
    }
    return 0
}

private func checkRoundTrip(_ request: Request, original: ArraySlice<UInt8>) {
    guard let json = try? JSONText.decode(original), case .object(var object) = json else {
        preconditionFailure("accepted a line that is not a JSON object")
    }
    object.removeValue(forKey: "id")
    let op = object.removeValue(forKey: "op")?.stringValue ?? ""
    let again = RequestDecoder.decode(Array(RequestEncoder.line(id: request.id, op: op, params: object).utf8))
    guard case .success(let decoded) = again else {
        preconditionFailure("a re-encoded request was refused: \(again)")
    }
    precondition(decoded.operation.name == request.operation.name, "round trip changed the op")
}

private func checkAgainstFoundation(_ line: ArraySlice<UInt8>) {
    guard let mine = try? JSONParser.parse(line) else { return }
    guard let theirs = try? JSONDecoder().decode(JSONValue.self, from: Data(line)) else {
        preconditionFailure("JSONParser accepted what Foundation refuses: \(String(decoding: line, as: UTF8.self))")
    }
    precondition(mine.agrees(with: theirs), "JSONParser and Foundation disagree: \(mine) vs \(theirs)")
    // Agrees, not equal: an integral double is written as an integer, as JSONEncoder does.
    precondition((try? JSONParser.parse(JSONText.encode(mine)))?.agrees(with: mine) == true, "writing and reading back changed \(mine)")
}
