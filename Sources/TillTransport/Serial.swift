public import TillSystem

/// Serial lines (RS-232 and USB-serial adapters, `/dev/ttyS*`, `/dev/ttyUSB*`, `/dev/ttyACM*`)
/// and `/dev/usb/lp*` printers, opened the way a device should be.
public enum SerialPort {
    /// Opens `path` exclusively (TIOCEXCL), raw, with `settings` read back, input left over from
    /// before discarded. Errors name the fix (permission, busy, missing node).
    public static func open(_ path: String, settings: SerialSettings) throws -> DescriptorStream<DescriptorIO> {
        if let problem = settings.problem { throw TransportError(.invalidSettings, endpoint: path, problem) }
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readWrite, options: [.noControllingTerminal, .nonBlocking])
        } catch let error as SystemError {
            throw TransportError.from(error, endpoint: path, opening: true)
        }
        do {
            try descriptor.configureSerial(settings)
            do {
                try descriptor.lockTerminalExclusively()
            } catch let error as SystemError where error.name == "ENOTTY" {
                // A terminal (its settings were just taken) whose driver has no exclusive mode:
                // no kernel tty does, only an emulation (umockdev's); it is used as it is.
            }
            try descriptor.discardInput()
        } catch let error as SystemError {
            try? descriptor.close()
            if error.name == "ENOTTY" {
                throw TransportError(.invalidSettings, endpoint: path, "\(path) is not a serial port (ENOTTY); for a USB printer's /dev/usb/lp* use transport = \"usblp\"", cause: error)
            }
            if error.name == "EINVAL" {
                throw TransportError(.invalidSettings, endpoint: path, "\(error.subject); pick settings the device and adapter support", cause: error)
            }
            throw TransportError.from(error, endpoint: path, opening: true)
        }
        do {
            return DescriptorStream(try DescriptorIO(descriptor: descriptor, endpoint: path, isTerminal: true))
        } catch let error as SystemError {
            try? descriptor.close()
            throw TransportError.from(error, endpoint: path, opening: true)
        }
    }
}

/// A USB printer through the kernel's usblp driver (`/dev/usb/lp0`): a character device that
/// takes the bytes and, when the printer has a back channel, gives status bytes back.
public enum LinePrinterDevice {
    public static func open(_ path: String) throws -> DescriptorStream<DescriptorIO> {
        do {
            let descriptor: FileDescriptor
            do {
                descriptor = try FileDescriptor.open(path, .readWrite, options: [.nonBlocking])
            } catch let error as SystemError where error.name == "EACCES" || error.name == "EINVAL" {
                // Some printers have no back channel and open for writing only.
                descriptor = try FileDescriptor.open(path, .writeOnly, options: [.nonBlocking])
            }
            return DescriptorStream(try DescriptorIO(descriptor: descriptor, endpoint: path, isTerminal: false))
        } catch let error as SystemError {
            throw TransportError.from(error, endpoint: path, opening: true)
        }
    }
}
