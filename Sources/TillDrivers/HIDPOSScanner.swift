public import TillDevices
public import TillScanner
public import TillTransport

/// `hidpos-scanner`: a USB scanner in HID POS mode (usage page 0x8C), read through hidraw.
/// Unlike keyboard mode nothing is typed anywhere, so nothing needs grabbing, and the scanner
/// says which symbology it read. Where the code, its AIM identifier and the continuation flag
/// sit in a report is read from the scanner's report descriptor (`HIDPOSLayout`); a long code
/// arrives in several reports and is put back together (`HIDPOSAssembler`).
public final class HIDPOSScanner: TillDevice {
    public let info: DeviceInfo
    public var status: DeviceStatus { reader.state.current }

    private let classifier: ScanClassifier
    private let reportGap: Duration
    private let onProblem: @Sendable (String) -> Void
    private let reader: ReopeningReader<Opened>
    private let thread = DedicatedThread(name: "tilld-scan")

    /// A source with the layout its descriptor gave.
    struct Opened: Sendable {
        var source: any HIDReportSource
        var layout: HIDPOSLayout
    }

    /// - Parameters:
    ///   - reportGap: how long the rest of a multi-report scan may take before it is given up.
    public init(
        info: DeviceInfo, classifier: ScanClassifier, reportGap: Duration = .milliseconds(500),
        onProblem: @escaping @Sendable (String) -> Void = { _ in }, presence: (any DevicePresence)? = nil,
        open: @escaping @Sendable () async throws -> any HIDReportSource
    ) {
        self.info = info
        self.classifier = classifier
        self.reportGap = reportGap
        self.onProblem = onProblem
        reader = ReopeningReader(open: {
            let source = try await open()
            do {
                return Opened(source: source, layout: try HIDPOSLayout(descriptor: try await source.reportDescriptor()))
            } catch {
                await source.close()
                throw error
            }
        }, close: { await $0.source.close() }, presence: presence)
    }

    public func prepare() async {
        await reader.prepare()
    }

    public func run(events: any EventSink) async throws {
        // On a thread of its own, as the serial scanner (SerialScanner.run says why).
        try await thread.run {
            try await reader.run(device: info.name, events: events) { opened in
                try await read(opened, events)
            }
        }
    }

    private func read(_ opened: Opened, _ events: any EventSink) async throws {
        var assembler = HIDPOSAssembler()
        let source = opened.source
        while !Task.isCancelled {
            // Mid-scan, the next report is due at once; otherwise wait as long as it takes (a
            // cancellation wakes the wait).
            let timeout = assembler.hasPending ? reportGap : .seconds(24 * 3600)
            let read = try await withTaskCancellationHandler {
                if let report = try source.nextReportBlocking(timeout: timeout) { return report }
                return try await source.nextReport(timeout: timeout)
            } onCancel: {
                source.cancelWaits()
            }
            guard let read else {
                if assembler.hasPending {
                    let lost = assembler.abandon()
                    onProblem("a scan's continuation report did not come within \(reportGap): its first \(lost) bytes were dropped (a loose cable or a scanner reset?)")
                }
                continue
            }
            for report in opened.layout.split(read) {
                guard let piece = opened.layout.read(report) else { continue }  // another report
                switch assembler.feed(piece) {
                case .scan(let frame)?:
                    await events.offer(.scan(Scan(frame, classifier: classifier)), device: info.name)
                case .tooLong(let discarded)?:
                    onProblem("a scan of \(discarded) bytes, more than \(assembler.maxLength), was discarded")
                case nil:
                    break
                }
            }
        }
    }
}
