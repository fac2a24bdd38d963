import CLibUSB
import Dispatch
import Foundation
import Synchronization

/// A USB printer through libusb: the printer-class (7) or vendor interface with a bulk OUT
/// endpoint (and a bulk IN one for status, when it has one). The kernel's usblp driver, when
/// bound, is detached while tilld holds the interface and re-attached when it lets go. Every
/// libusb call that waits runs on the stream's own queue with a timeout, never on a task's
/// thread; a read waits in short slices so `cancelWaits` is seen at once. Transfers go one at a
/// time (reads and writes share the queue): the driver reads only right after it asks for status
/// (`readsWhileWriting` is false), so a job never waits behind a read.
public final class USBPrinterStream: ByteStream {
    public struct Match: Sendable, Hashable, CustomStringConvertible {
        public var vendor: UInt16
        public var product: UInt16
        public var serial: String?
        /// The kernel's name for where it is plugged in ("1-1.2": bus 1, port 1, then port 2), as
        /// /sys/bus/usb/devices lists it: tells apart two printers with no serial number.
        public var port: String?

        public init(vendor: UInt16, product: UInt16, serial: String? = nil, port: String? = nil) {
            self.vendor = vendor
            self.product = product
            self.serial = serial
            self.port = port
        }

        public var description: String {
            String(format: "USB %04x:%04x", vendor, product) + (serial.map { " serial \($0)" } ?? "") + (port.map { " at \($0)" } ?? "")
        }
    }

    public let endpoint: String
    /// Bus and address, for messages ("bus 1 device 2").
    public let location: String
    /// The usbfs node libusb opened (/dev/bus/usb/BBB/DDD): what udev names when it goes away.
    public let devicePath: String?
    private nonisolated(unsafe) let context: OpaquePointer
    private nonisolated(unsafe) let handle: OpaquePointer
    private let interface: Int32
    private let outEndpoint: UInt8
    private let inEndpoint: UInt8?
    /// Whether usblp was bound and we detached it (attached again on close).
    public let kernelDriverDetached: Bool
    private let transfers = DispatchQueue(label: "tilld.usb.transfers")
    public var readsWhileWriting: Bool { false }
    private let state = Mutex<(closed: Bool, interrupt: Int)>((false, 0))

    public var hasBackChannel: Bool { inEndpoint != nil }

    /// Finds and opens the printer; errors name the fix (udev rules, a program holding it).
    public static func open(_ match: Match) throws -> USBPrinterStream {
        var context: OpaquePointer?
        let endpoint = match.description
        guard libusb_init(&context) == 0, let context else {
            throw TransportError(.io, endpoint: endpoint, "libusb could not start (no /dev/bus/usb?)")
        }
        do {
            return try open(match, context: context)
        } catch {
            libusb_exit(context)
            throw error
        }
    }

    private static func open(_ match: Match, context: OpaquePointer) throws -> USBPrinterStream {
        let endpoint = match.description
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context, &list)
        guard count >= 0, let list else { throw error(Int32(count), endpoint, doing: "list USB devices") }
        defer { libusb_free_device_list(list, 1) }
        var sameModel = 0
        for index in 0..<Int(count) {
            guard let device = list[index] else { continue }
            var descriptor = libusb_device_descriptor()
            guard libusb_get_device_descriptor(device, &descriptor) == 0,
                  descriptor.idVendor == match.vendor, descriptor.idProduct == match.product else { continue }
            sameModel += 1
            if let serial = match.serial, serialNumber(of: device) != serial { continue }
            if let port = match.port, kernelName(of: device) != port { continue }
            return try USBPrinterStream(device: device, context: context, endpoint: endpoint)
        }
        if sameModel > 0, let serial = match.serial {
            throw TransportError(.notFound, endpoint: endpoint, "\(sameModel) printer(s) \(String(format: "%04x:%04x", match.vendor, match.product)) are plugged in, none with serial \(serial): `tillctl devices` lists what is there; fix the serial in the [[device]] entry")
        }
        throw TransportError(.notFound, endpoint: endpoint, "no \(endpoint) is plugged in: check the cable and that it is on (`lsusb` lists USB devices)")
    }

    /// The serial number from sysfs (udev's view; no control transfer to a busy device).
    private static func serialNumber(of device: OpaquePointer) -> String? {
        guard let name = kernelName(of: device) else { return nil }
        return (try? String(contentsOfFile: "/sys/bus/usb/devices/\(name)/serial", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// "1-1.2": the bus, then the port at each hub on the way.
    private static func kernelName(of device: OpaquePointer) -> String? {
        var ports = [UInt8](repeating: 0, count: 8)
        let depth = libusb_get_port_numbers(device, &ports, Int32(ports.count))
        guard depth > 0 else { return nil }
        return "\(libusb_get_bus_number(device))-" + ports[0..<Int(depth)].map(String.init).joined(separator: ".")
    }

    private init(device: OpaquePointer, context: OpaquePointer, endpoint: String) throws {
        location = "bus \(libusb_get_bus_number(device)) device \(libusb_get_device_address(device))"
        devicePath = String(format: "/dev/bus/usb/%03d/%03d", libusb_get_bus_number(device), libusb_get_device_address(device))
        self.endpoint = endpoint
        var config: UnsafeMutablePointer<libusb_config_descriptor>?
        let got = libusb_get_active_config_descriptor(device, &config)
        guard got == 0, let config else { throw Self.error(got, endpoint, doing: "read the configuration of") }
        defer { libusb_free_config_descriptor(config) }
        // The printer-class interface, else a vendor one, with a bulk OUT endpoint.
        var chosen: (interface: Int32, out: UInt8, input: UInt8?, printerClass: Bool)?
        for i in 0..<Int(config.pointee.bNumInterfaces) {
            let interface = config.pointee.interface[i]
            for a in 0..<Int(interface.num_altsetting) {
                let setting = interface.altsetting[a]
                let printerClass = setting.bInterfaceClass == 7
                guard printerClass || setting.bInterfaceClass == 0xFF else { continue }
                var out: UInt8?
                var input: UInt8?
                for e in 0..<Int(setting.bNumEndpoints) {
                    let ep = setting.endpoint[e]
                    guard ep.bmAttributes & 0x03 == 2 else { continue }  // bulk
                    if ep.bEndpointAddress & 0x80 == 0 { out = out ?? ep.bEndpointAddress } else { input = input ?? ep.bEndpointAddress }
                }
                if let out, chosen == nil || (printerClass && chosen?.printerClass == false) {
                    chosen = (Int32(setting.bInterfaceNumber), out, input, printerClass)
                }
            }
        }
        guard let chosen else {
            throw TransportError(.invalidSettings, endpoint: endpoint, "\(endpoint) has no printer interface with a bulk OUT endpoint: is it a printer? (`lsusb -v -d \(String(format: "%04x:%04x", 0, 0))` shows its interfaces)")
        }
        var handle: OpaquePointer?
        let opened = libusb_open(device, &handle)
        guard opened == 0, let handle else { throw Self.error(opened, endpoint, doing: "open") }
        // usblp holds printer interfaces: detached while we hold it, attached again when we let
        // go (close), so /dev/usb/lp0 comes back for other programs. Asked and done explicitly
        // (not libusb's auto-detach, whose combined ioctl some kernels and test doubles lack).
        var detached = false
        if libusb_kernel_driver_active(handle, chosen.interface) == 1 {
            let result = libusb_detach_kernel_driver(handle, chosen.interface)
            guard result == 0 else {
                libusb_close(handle)
                throw Self.error(result, endpoint, doing: "detach the usblp driver from")
            }
            detached = true
        }
        let claimed = libusb_claim_interface(handle, chosen.interface)
        guard claimed == 0 else {
            if detached { libusb_attach_kernel_driver(handle, chosen.interface) }
            libusb_close(handle)
            throw Self.error(claimed, endpoint, doing: "claim the printer interface of")
        }
        kernelDriverDetached = detached
        self.context = context
        self.handle = handle
        interface = chosen.interface
        outEndpoint = chosen.out
        inEndpoint = chosen.input
    }

    deinit {
        if !state.withLock({ $0.closed }) {
            libusb_release_interface(handle, interface)
            libusb_close(handle)
            libusb_exit(context)
        }
    }

    public func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] {
        guard let inEndpoint else {
            try await Task.sleep(for: timeout)
            return []
        }
        let generation = state.withLock { $0.interrupt }
        return try await run(on: transfers) { [endpoint] in
            let handle = self.handle
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: max(1, maxCount))
            while true {
                try self.checkOpen()
                if self.state.withLock({ $0.interrupt != generation }) { return [] }
                let left = deadline - ContinuousClock.now
                guard left > .zero else { return [] }
                var transferred: Int32 = 0
                let result = libusb_bulk_transfer(handle, inEndpoint, &buffer, Int32(buffer.count), &transferred, Self.milliseconds(min(left, .milliseconds(200))))
                if transferred > 0 { return Array(buffer[0..<Int(transferred)]) }
                if result == LIBUSB_ERROR_TIMEOUT.rawValue || result == 0 { continue }
                throw Self.error(result, endpoint, doing: "read from")
            }
        }
    }

    public func write(_ bytes: [UInt8], timeout: Duration) async throws {
        try await run(on: transfers) { [outEndpoint, endpoint] in
            let handle = self.handle
            try self.checkOpen()
            let deadline = ContinuousClock.now + timeout
            var offset = 0
            var buffer = bytes
            while offset < buffer.count {
                let left = deadline - ContinuousClock.now
                var transferred: Int32 = 0
                let result = buffer.withUnsafeMutableBufferPointer { pointer in
                    libusb_bulk_transfer(handle, outEndpoint, pointer.baseAddress! + offset, Int32(pointer.count - offset), &transferred, Self.milliseconds(max(left, .milliseconds(1))))
                }
                offset += Int(transferred)
                if result == 0 { continue }
                var error: TransportError
                if result == LIBUSB_ERROR_TIMEOUT.rawValue {
                    if transferred > 0 && left > .zero && (offset < buffer.count) { continue }
                    error = TransportError(.timedOut, endpoint: endpoint, "\(endpoint) took \(offset) of \(buffer.count) bytes, then nothing for \(timeout): out of paper, cover open, or offline")
                } else {
                    error = Self.error(result, endpoint, doing: "write to")
                }
                error.bytesWritten = offset
                throw error
            }
            _ = buffer
        }
    }

    /// Bulk transfers return once the printer has the bytes: nothing waits in the computer.
    public func drain(timeout: Duration) async throws {}

    public func cancelWaits() {
        state.withLock { $0.interrupt &+= 1 }
    }

    public func close() async {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        cancelWaits()
        _ = try? await run(on: transfers) {}
        libusb_release_interface(handle, interface)
        if kernelDriverDetached { libusb_attach_kernel_driver(handle, interface) }
        libusb_close(handle)
        libusb_exit(context)
    }

    private func checkOpen() throws {
        if state.withLock({ $0.closed }) { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
    }

    private func run<T: Sendable>(on queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    private static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        return UInt32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// libusb's errors as what to do about them.
    static func error(_ code: Int32, _ endpoint: String, doing action: String) -> TransportError {
        let name = String(cString: libusb_error_name(code))
        switch code {
        case LIBUSB_ERROR_ACCESS.rawValue:
            return TransportError(.permission, endpoint: endpoint, "permission denied to \(action) \(endpoint) (\(name)): install tilld's udev rules (udev/60-tilld.rules gives group till access to known printers), then unplug and replug it")
        case LIBUSB_ERROR_BUSY.rawValue:
            return TransportError(.busy, endpoint: endpoint, "\(endpoint) is busy (\(name)): another program holds it (CUPS? `lsof | grep /dev/bus/usb` names it), or the usblp driver could not be let go; stop that program, or set path = \"/dev/usb/lp0\" to print through usblp instead")
        case LIBUSB_ERROR_NO_DEVICE.rawValue:
            return TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (\(name)): unplugged or switched off; tilld picks it up again when it is back")
        case LIBUSB_ERROR_NOT_FOUND.rawValue:
            return TransportError(.notFound, endpoint: endpoint, "\(endpoint) is not there (\(name)): check the cable")
        case LIBUSB_ERROR_PIPE.rawValue:
            return TransportError(.io, endpoint: endpoint, "\(endpoint) stalled (\(name)) while tilld tried to \(action) it: switch the printer off and on")
        default:
            return TransportError(.io, endpoint: endpoint, "could not \(action) \(endpoint): \(name)")
        }
    }
}
