import CLibUDev
import Foundation
import Synchronization
import TillSystem

/// One device as udev describes it, copied out of libudev (a plain value: no pointer escapes
/// the thread that read it). What discovery needs: where the node is, what the device is, who
/// made it, and where it is plugged in.
public struct UDevRecord: Sendable, Hashable {
    /// The USB device a node belongs to (its usb_device ancestor), when it is on USB.
    public struct USB: Sendable, Hashable {
        public var vendor: UInt16
        public var product: UInt16
        /// The device's own serial number, when it has one (many scanners and cheap printers do not).
        public var serial: String?
        public var manufacturer: String?
        public var productName: String?
        public var syspath: String

        public init(vendor: UInt16, product: UInt16, serial: String? = nil, manufacturer: String? = nil, productName: String? = nil, syspath: String) {
            self.vendor = vendor
            self.product = product
            self.serial = serial
            self.manufacturer = manufacturer
            self.productName = productName
            self.syspath = syspath
        }
    }

    /// add, remove, change, bind, unbind; nil for a device found by enumeration.
    public var action: String?
    public var syspath: String
    public var subsystem: String
    public var devtype: String?
    public var sysname: String
    public var devnode: String?
    /// The kernel driver bound to the device (or, for a node, to its USB interface): usblp,
    /// cdc_acm, usbhid, ftdi_sio...
    public var driver: String?
    /// The USB interface class of the node's interface (7 printer, 2/10 CDC, 3 HID).
    public var interfaceClass: UInt8?
    public var usb: USB?
    /// udev's properties: ID_PATH (the physical port), ID_SERIAL, ID_INPUT_KEYBOARD,
    /// ID_MM_DEVICE_IGNORE, DEVLINKS...
    public var properties: [String: String]

    public init(
        action: String? = nil, syspath: String, subsystem: String, devtype: String? = nil, sysname: String, devnode: String? = nil, driver: String? = nil,
        interfaceClass: UInt8? = nil, usb: USB? = nil, properties: [String: String] = [:]
    ) {
        self.action = action
        self.syspath = syspath
        self.subsystem = subsystem
        self.devtype = devtype
        self.sysname = sysname
        self.devnode = devnode
        self.driver = driver
        self.interfaceClass = interfaceClass
        self.usb = usb
        self.properties = properties
    }

    /// The physical port it is plugged into (udev's ID_PATH): stable across replug and reboot
    /// for the same socket, the identity of a device with no serial number.
    public var portPath: String? { properties["ID_PATH"] }
}

/// What the daemon learns from udev: everything present at start, then each change.
public enum UDevEvent: Sendable, Hashable {
    case present([UDevRecord])
    case changed(UDevRecord)
}

/// Where devices come from: udev (the real one), or a script in tests.
public protocol DeviceMonitor: Sendable {
    /// Everything present, then each add and remove as it happens, until the task is cancelled.
    func events() -> AsyncStream<UDevEvent>
}

/// libudev's enumeration and netlink monitor for the subsystems till devices live in. The
/// monitor's socket is watched by one thread of its own in `poll` with no timeout (an eventfd
/// ends it): nothing wakes while nothing is plugged in or out. It is set to receive before the
/// enumeration runs, so a device plugged in meanwhile is seen at least once (twice at most:
/// consumers take an add of a known device as an update).
public final class UDevMonitor: DeviceMonitor {
    public static let subsystems = ["usb", "usbmisc", "tty", "input", "hidraw"]
    private let subsystems: [String]

    public init(subsystems: [String] = UDevMonitor.subsystems) {
        self.subsystems = subsystems
    }

    public func events() -> AsyncStream<UDevEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: UDevEvent.self, bufferingPolicy: .bufferingNewest(4096))
        let wake: FileDescriptor
        do {
            wake = try FileDescriptor.makeEventFD()
        } catch {
            continuation.finish()
            return stream
        }
        let subsystems = self.subsystems
        let thread = Thread {
            ThreadName.set("tilld-udev")
            Self.watch(subsystems: subsystems, wake: wake, continuation: continuation)
            try? wake.close()
        }
        continuation.onTermination = { _ in wake.signalEventFD() }
        thread.start()
        return stream
    }

    /// Runs on the monitor's own thread: every libudev object is made, used and freed here.
    private static func watch(subsystems: [String], wake: FileDescriptor, continuation: AsyncStream<UDevEvent>.Continuation) {
        defer { continuation.finish() }
        guard let udev = udev_new() else { return }
        defer { udev_unref(udev) }
        // udev's own messages (with its properties: ID_PATH, links) where udevd runs; the
        // kernel's raw uevents where it does not (a container, an initramfs), so a device
        // plugged in is still heard. umockdev's testbed speaks as udev.
        let udevd = FileManager.default.fileExists(atPath: "/run/udev/control") || ProcessInfo.processInfo.environment["UMOCKDEV_DIR"] != nil
        guard let monitor = udev_monitor_new_from_netlink(udev, udevd ? "udev" : "kernel") else { return }
        defer { udev_monitor_unref(monitor) }
        for subsystem in subsystems { udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem, nil) }
        udev_monitor_enable_receiving(monitor)
        continuation.yield(.present(enumerate(udev, subsystems: subsystems)))
        let socket = FileDescriptor(rawValue: udev_monitor_get_fd(monitor))
        while true {
            guard let (ready, woken) = try? socket.poll(for: .readable, timeout: nil, wake: wake), !woken else { return }
            guard ready.contains(.readable) else { continue }
            // Each readable round may hold several messages; receive until there is none.
            while let device = udev_monitor_receive_device(monitor) {
                let record = Self.record(device)
                udev_device_unref(device)
                continuation.yield(.changed(record))
            }
        }
    }

    /// What is present now in `subsystems`, without a monitor (`tillctl devices`, `doctor`).
    public static func present(subsystems: [String] = UDevMonitor.subsystems) -> [UDevRecord] {
        guard let udev = udev_new() else { return [] }
        defer { udev_unref(udev) }
        return enumerate(udev, subsystems: subsystems)
    }

    private static func enumerate(_ udev: OpaquePointer, subsystems: [String]) -> [UDevRecord] {
        guard let enumeration = udev_enumerate_new(udev) else { return [] }
        defer { udev_enumerate_unref(enumeration) }
        for subsystem in subsystems { udev_enumerate_add_match_subsystem(enumeration, subsystem) }
        udev_enumerate_scan_devices(enumeration)
        var records: [UDevRecord] = []
        var entry = udev_enumerate_get_list_entry(enumeration)
        while let current = entry {
            if let name = udev_list_entry_get_name(current), let device = udev_device_new_from_syspath(udev, name) {
                records.append(record(device))
                udev_device_unref(device)
            }
            entry = udev_list_entry_get_next(current)
        }
        return records
    }

    private static func string(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }

    private static func record(_ device: OpaquePointer) -> UDevRecord {
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            // Not SEQNUM or ACTION: they differ between two messages about the same device, which
            // would make a repeated add look like a change.
            if let name = string(udev_list_entry_get_name(current)), name != "SEQNUM", name != "ACTION" {
                properties[name] = string(udev_list_entry_get_value(current)) ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        var usb: UDevRecord.USB? = nil
        let usbDevice = string(udev_device_get_devtype(device)) == "usb_device" ? device : udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device")
        if let usbDevice,
           let vendor = string(udev_device_get_sysattr_value(usbDevice, "idVendor")).flatMap({ UInt16($0, radix: 16) }),
           let product = string(udev_device_get_sysattr_value(usbDevice, "idProduct")).flatMap({ UInt16($0, radix: 16) }) {
            usb = UDevRecord.USB(
                vendor: vendor, product: product,
                serial: string(udev_device_get_sysattr_value(usbDevice, "serial"))?.trimmingCharacters(in: .whitespaces),
                manufacturer: string(udev_device_get_sysattr_value(usbDevice, "manufacturer")),
                productName: string(udev_device_get_sysattr_value(usbDevice, "product")),
                syspath: string(udev_device_get_syspath(usbDevice)) ?? "")
        }
        let interface = string(udev_device_get_devtype(device)) == "usb_interface" ? device : udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_interface")
        let interfaceClass = interface.flatMap { string(udev_device_get_sysattr_value($0, "bInterfaceClass")) }.flatMap { UInt8($0, radix: 16) }
        // The bound driver (sysfs's driver link; libudev's DRIVER property is not to be read).
        let driver = string(udev_device_get_driver(device)) ?? interface.flatMap { string(udev_device_get_driver($0)) }
        return UDevRecord(
            action: string(udev_device_get_action(device)), syspath: string(udev_device_get_syspath(device)) ?? "",
            subsystem: string(udev_device_get_subsystem(device)) ?? "", devtype: string(udev_device_get_devtype(device)),
            sysname: string(udev_device_get_sysname(device)) ?? "", devnode: string(udev_device_get_devnode(device)), driver: driver,
            interfaceClass: interfaceClass, usb: usb, properties: properties)
    }
}
