import Foundation
import Synchronization
public import TillDevices
import TillKeymap
public import TillScanner
public import TillTransport

/// `evdev-scanner`: a keyboard-wedge scanner. tilld grabs its input node (EVIOCGRAB), so its
/// keystrokes reach no console and no other program, and turns key codes into text under the
/// layout the scanner types in (`layout = "de"`), honouring Shift, Caps Lock and AltGr through
/// libxkbcommon. A device is opened only because the config (or the quirks data) names it:
/// never by a guess that could grab a real keyboard.
public final class EvdevScanner: TillDevice {
    public enum Terminator: String, Sendable { case enter, tab, none }

    public let info: DeviceInfo
    public var status: DeviceStatus { reader.state.current }

    private let layout: String
    private let variant: String?
    private let terminator: Terminator
    private let interKey: Duration
    private let classifier: ScanClassifier
    private let reader: ReopeningReader<any InputEventSource>
    private let thread = DedicatedThread(name: "tilld-scan")

    public init(
        info: DeviceInfo, layout: String = "us", variant: String? = nil, terminator: Terminator = .enter,
        interKey: Duration = .milliseconds(100), classifier: ScanClassifier, presence: (any DevicePresence)? = nil,
        open: @escaping @Sendable () async throws -> any InputEventSource
    ) {
        self.info = info
        self.layout = layout
        self.variant = variant
        self.terminator = terminator
        self.interKey = interKey
        self.classifier = classifier
        reader = ReopeningReader(open: {
            let source = try await open()
            do {
                try await source.grab(true)
            } catch {
                await source.close()
                throw error
            }
            return source
        }, close: { await $0.close() }, presence: presence)
    }

    public func prepare() async {
        do {
            _ = try Keymap(layout: layout, variant: variant)  // a wrong layout is a config error: said at once
        } catch {
            reader.state.setQuietly(DeviceStatus(.error, reason: "\(error)"))
            return
        }
        await reader.prepare()
    }

    public func run(events: any EventSink) async throws {
        let keymap: Keymap
        do {
            keymap = try Keymap(layout: layout, variant: variant)
        } catch {
            await reader.state.set(DeviceStatus(.error, reason: "\(error)"), device: info.name, events)
            return
        }
        // On a thread of its own, as the serial scanner (SerialScanner.run says why).
        try await thread.run {
            try await reader.run(device: info.name, events: events) { source in
                try await read(source, keymap, events)
            }
        }
    }

    private func read(_ source: any InputEventSource, _ keymap: Keymap, _ events: any EventSink) async throws {
        var text = ""
        var raw: [UInt8] = []
        while !Task.isCancelled {
            let timeout: Duration = text.isEmpty ? .seconds(24 * 3600) : interKey
            // A wait of hours is woken at once by a cancellation (tilld stopping).
            let batch = try await withTaskCancellationHandler {
                if let batch = try source.nextBlocking(timeout: timeout) { return batch }
                return try await source.next(timeout: timeout)
            } onCancel: {
                source.cancelWaits()
            }
            if batch.isEmpty {
                // The keys stopped: with no terminator that ends the scan; with one, a half scan
                // (the scanner unplugged mid-code) is dropped.
                if terminator == .none, !text.isEmpty { await emit(text, raw, events) }
                text = ""
                raw = []
                continue
            }
            for event in batch {
                if event == .dropped {
                    // The kernel dropped events: which keys are down is unknown, the scan is torn.
                    keymap.reset()
                    text = ""
                    raw = []
                    continue
                }
                guard event.type == InputEvent.key else { continue }
                if event.value == 0 {
                    keymap.release(event.code)
                    continue
                }
                guard event.value == 1 else { continue }  // autorepeat (2) is not a scanner's
                if (event.code == 28 || event.code == 96) && terminator == .enter || event.code == 15 && terminator == .tab {
                    keymap.release(event.code)
                    if !text.isEmpty { await emit(text, raw, events) }
                    text = ""
                    raw = []
                    continue
                }
                let typed = keymap.press(event.code)
                text += typed
                raw += Array(typed.utf8)
                if raw.count > 4096 {  // a stuck key or a keyboard mistaken for a scanner: bounded
                    text = ""
                    raw = []
                }
            }
        }
    }

    private func emit(_ text: String, _ raw: [UInt8], _ events: any EventSink) async {
        await events.offer(.scan(Scan(text: text, raw: raw, aim: nil, classifier: classifier)), device: info.name)
    }


}
