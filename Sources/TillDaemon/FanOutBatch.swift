import Foundation
import NIOCore
import TillCore

/// One committed batch of events as subscribers receive it: every wire line, in seq order, in
/// one buffer, and each subscriber handed slices of it (a run of consecutive events its filter
/// wants is one slice) rather than a buffer per event.
///
/// Why: fanning a batch out used to queue, poll and copy one buffer per event *and* subscriber;
/// at 32 subscribers that per-delivery work (reference counting, mostly) was the larger part of
/// the daemon's CPU. A slice shares the batch's storage, so handing a subscriber 200 events
/// costs what handing it one did, and its socket gets them in one write.
struct FanOutBatch: Sendable {
    /// Every event's line, each ending in a newline.
    let wire: ByteBuffer
    let seqs: [Int64]
    let topics: [String]
    /// `wire`'s reader offsets where each line starts, plus one past the last.
    private let bounds: [Int]

    init(_ events: [(event: Event, dataJSON: String)]) {
        var wire = ByteBuffer()
        var bounds: [Int] = [0]
        bounds.reserveCapacity(events.count + 1)
        var formatted: (time: Date, text: String)? = nil
        for row in events {
            // The events of a commit share their time (a held device event keeps its own).
            if formatted?.time != row.event.time { formatted = (row.event.time, Timestamp.format(row.event.time)) }
            wire.writeString(row.event.wireLine(dataJSON: row.dataJSON, timeText: formatted!.text))
            wire.writeInteger(UInt8(ascii: "\n"))
            bounds.append(wire.writerIndex)
        }
        self.wire = wire
        self.bounds = bounds
        self.seqs = events.map(\.event.seq)
        self.topics = events.map(\.event.topic)
    }

    var lastSeq: Int64? { seqs.last }

    /// Which events `filter` wants (computed once per distinct filter and batch by the caller).
    func wanted(by filter: TopicFilter) -> [Bool] {
        topics.map(filter.matches)
    }

    /// The slices a subscriber gets: runs of consecutive events after `after` that `wanted`
    /// marks, each with the seq of its last event (what the subscriber has been handed once the
    /// slice is on the wire).
    func runs(after: Int64, wanted: [Bool]) -> [(lastSeq: Int64, lines: ByteBuffer)] {
        var runs: [(lastSeq: Int64, lines: ByteBuffer)] = []
        var start: Int? = nil
        func close(_ end: Int) {
            guard let first = start else { return }
            let slice = wire.getSlice(at: bounds[first], length: bounds[end] - bounds[first])!
            runs.append((seqs[end - 1], slice))
            start = nil
        }
        for index in seqs.indices {
            if seqs[index] > after, wanted[index] {
                if start == nil { start = index }
            } else {
                close(index)
            }
        }
        close(seqs.count)
        return runs
    }
}
