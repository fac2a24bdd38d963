// The per-publish work of tilld's event path that is pure protocol code: decoding a `publish`
// request (JSON parse, validation), encoding its data for the journal and writing the event's
// wire line. A fan-out spends about a fifth of the publisher loop's CPU here
// (docs/benchmarks.md). Not a test: run it in release.
//     swift run -c release till-wire-bench [publishes]
// For an A/B that the machine's noise cannot move, count instructions instead of time:
//     valgrind --tool=callgrind --callgrind-out-file=/dev/null .build/release/till-wire-bench 20000
import Foundation
import TillCore

let count = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
// Lines as POS software sends them: a small payload (bench.py's) and a sale.
let lines: [[UInt8]] = (0..<1000).map { n in
    let line = n % 2 == 0
        ? #"{"id":\#(n),"op":"publish","topic":"bench.fan","data":{"n":\#(n)}}"#
        : #"{"id":"r-\#(n)","op":"publish","topic":"sale.line","data":{"sale":"S-\#(n)","sku":"AB-\#(n)","gtin":"4006381333931","name":"Flat white, oat","qty":2,"unit_price":"3.10","amount":"6.20","category":"coffee"}}"#
    return Array(line.utf8)
}
let time = Date(timeIntervalSince1970: 1_780_000_000.123)

@inline(never) func run(_ publishes: Int) -> (seconds: Double, bytes: Int) {
    var bytes = 0
    let start = ContinuousClock.now
    let timeText = Timestamp.format(time)
    for index in 0..<publishes {
        guard case .success(let request) = RequestDecoder.decode(lines[index % lines.count]),
              case .publish(let topic, let data) = request.operation
        else { fatalError("a benchmark line did not decode as a publish") }
        let event = Event(seq: Int64(index), time: time, topic: topic, device: nil, data: data)
        let dataJSON = JSONText.encode(data)
        bytes += event.wireLine(dataJSON: dataJSON, timeText: timeText).utf8.count
    }
    let elapsed = ContinuousClock.now - start
    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, bytes)
}

_ = run(min(count, 2000))  // warm up
var perPublish: [Double] = []
for _ in 0..<5 {
    let (seconds, bytes) = run(count)
    precondition(bytes > 0)
    perPublish.append(seconds / Double(count) * 1e9)
}
perPublish.sort()
print(String(format: "publish decode + journal text + wire line: %.0f ns per publish (median of 5 runs of %d; half bench.py's small events, half sale lines)", perPublish[2], count))
