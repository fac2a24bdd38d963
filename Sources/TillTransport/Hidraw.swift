public import TillSystem

/// A HID device through the kernel's hidraw interface (`/dev/hidraw*`): what a HID POS scanner
/// is. Each read is one input report; the report descriptor comes from sysfs
/// (`/sys/class/hidraw/hidrawN/device/report_descriptor`), where the kernel keeps the bytes the
/// device gave, and where umockdev can provide them in tests.
public final class HidrawDevice: HIDReportSource {
    public var endpoint: String { stream.endpoint }
    private let stream: DescriptorStream<DescriptorIO>
    private let node: String

    /// Opens the node read-only (hidraw has no exclusive open: reading does not take the
    /// scanner from anyone, and a HID POS scanner types into no console). Errors name the fix.
    public init(path: String) throws {
        do {
            let descriptor = try FileDescriptor.open(path, .readOnly, options: [.nonBlocking])
            stream = DescriptorStream(try DescriptorIO(descriptor: descriptor, endpoint: path, isTerminal: false))
        } catch let error as SystemError {
            throw TransportError.from(error, endpoint: path, opening: true)
        }
        // A udev symlink (/dev/hidpos-scanner → hidraw0) names the node by its target.
        node = Self.nodeName(path)
    }

    /// "hidraw3" for /dev/hidraw3, or for a link to it.
    static func nodeName(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasPrefix("hidraw") { return name }
        return FileSystem.symbolicLinkTarget(path)?.split(separator: "/").last.map(String.init) ?? name
    }

    public func reportDescriptor() async throws -> [UInt8] {
        let directory = "/sys/class/hidraw/\(node)"
        // `device` is the HID device the node belongs to; its directory is also two levels up
        // from the node's own (.../0003:0C2E:0B87.0001/hidraw/hidraw0), and ".." after a
        // symbolic link is resolved from the link's target.
        let candidates = [directory + "/device/report_descriptor", directory + "/../../report_descriptor"]
        for candidate in candidates {
            if let bytes = FileSystem.bytes(candidate, limit: 4096), !bytes.isEmpty { return bytes }
        }
        throw TransportError(.notFound, endpoint: endpoint, "\(endpoint): no report descriptor at \(candidates[0]); is it a hidraw node (/dev/hidraw*) and is sysfs mounted?")
    }

    public func nextReport(timeout: Duration) async throws -> [UInt8]? {
        let bytes = try await stream.read(maxCount: 4096, timeout: timeout)
        return bytes.isEmpty ? nil : bytes
    }

    public func nextReportBlocking(timeout: Duration) throws -> [UInt8]?? {
        guard let bytes = try stream.readBlocking(maxCount: 4096, timeout: timeout) else { return .none }
        return .some(bytes.isEmpty ? nil : bytes)
    }

    public func cancelWaits() { stream.cancelWaits() }

    public func close() async { await stream.close() }
}
