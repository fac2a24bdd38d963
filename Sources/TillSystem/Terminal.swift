import CTillSystem
import Glibc

/// How a serial line is framed: what `[[device]]` options `baud`, `data_bits`, `parity`,
/// `stop_bits` and `flow_control` say.
public struct SerialSettings: Sendable, Hashable, CustomStringConvertible {
    public enum Parity: String, Sendable, Hashable, CaseIterable { case none, even, odd }
    public enum FlowControl: String, Sendable, Hashable, CaseIterable {
        case none
        /// Hardware handshake on the RTS and CTS lines (most receipt printers' default).
        case rtsCts = "rtscts"
        /// Software handshake with XON/XOFF bytes (only for text: it eats 0x11 and 0x13).
        case xonXoff = "xonxoff"
    }

    /// The speeds a Linux serial port can be set to with termios (no custom divisors).
    public static let baudRates: [Int] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600]

    public var baud: Int
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: Int
    public var flowControl: FlowControl

    public init(baud: Int = 9600, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1, flowControl: FlowControl = .none) {
        self.baud = baud
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.flowControl = flowControl
    }

    /// "9600 8N1, rtscts"
    public var description: String {
        let parityLetter = switch parity {
        case .none: "N"
        case .even: "E"
        case .odd: "O"
        }
        return "\(baud) \(dataBits)\(parityLetter)\(stopBits)" + (flowControl == .none ? "" : ", \(flowControl.rawValue)")
    }

    /// What is wrong with these settings, or nil.
    public var problem: String? {
        if Self.speed(baud) == nil {
            return "baud \(baud) is not a speed a serial port takes; one of \(Self.baudRates.map(String.init).joined(separator: ", "))"
        }
        if !(5...8).contains(dataBits) { return "data_bits must be 5, 6, 7 or 8, not \(dataBits)" }
        if stopBits != 1, stopBits != 2 { return "stop_bits must be 1 or 2, not \(stopBits)" }
        return nil
    }

    static func speed(_ baud: Int) -> speed_t? {
        switch baud {
        case 1200: speed_t(B1200)
        case 2400: speed_t(B2400)
        case 4800: speed_t(B4800)
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115_200: speed_t(B115200)
        case 230_400: speed_t(B230400)
        case 460_800: speed_t(B460800)
        case 921_600: speed_t(B921600)
        default: nil
        }
    }

    static func baud(_ speed: speed_t) -> Int? {
        baudRates.first { Self.speed($0) == speed }
    }
}

extension FileDescriptor {
    /// Puts a terminal in raw mode with `settings` (no echo, no line editing, no translation of
    /// CR or NL, no signals from bytes: a receipt's bytes go out as they are), then reads the
    /// settings back and throws if the driver did not take them (some USB adapters refuse a speed).
    public func configureSerial(_ settings: SerialSettings) throws {
        if let problem = settings.problem { throw SystemError(call: "tcsetattr", subject: "\(description): \(problem)", errno: EINVAL) }
        var options = termios()
        try retryingInterrupts("tcgetattr", description) { tcgetattr(rawValue, &options) }
        cfmakeraw(&options)
        let speed = SerialSettings.speed(settings.baud)!
        cfsetispeed(&options, speed)
        cfsetospeed(&options, speed)
        options.c_cflag &= ~tcflag_t(CSIZE | PARENB | PARODD | CSTOPB)
        options.c_cflag &= ~tcflag_t(TILL_CRTSCTS)
        options.c_cflag |= tcflag_t(CREAD | CLOCAL)
        let size: tcflag_t = switch settings.dataBits {
        case 5: tcflag_t(CS5)
        case 6: tcflag_t(CS6)
        case 7: tcflag_t(CS7)
        default: tcflag_t(CS8)
        }
        options.c_cflag |= size
        switch settings.parity {
        case .none: break
        case .even: options.c_cflag |= tcflag_t(PARENB)
        case .odd: options.c_cflag |= tcflag_t(PARENB | PARODD)
        }
        if settings.stopBits == 2 { options.c_cflag |= tcflag_t(CSTOPB) }
        options.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        switch settings.flowControl {
        case .none: break
        case .rtsCts: options.c_cflag |= tcflag_t(TILL_CRTSCTS)
        case .xonXoff: options.c_iflag |= tcflag_t(IXON | IXOFF)
        }
        // Reads return what is there at once; waiting is done with poll, with a timeout.
        withUnsafeMutableBytes(of: &options.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        try retryingInterrupts("tcsetattr", description) { tcsetattr(rawValue, TCSANOW, &options) }
        let applied = try serialSettings()
        guard applied == settings else {
            throw SystemError(call: "tcsetattr", subject: "\(description): asked for \(settings), the driver kept \(applied)", errno: EINVAL)
        }
    }

    /// The framing the terminal is set to now, read back from the driver.
    public func serialSettings() throws -> SerialSettings {
        var options = termios()
        try retryingInterrupts("tcgetattr", description) { tcgetattr(rawValue, &options) }
        let size = options.c_cflag & tcflag_t(CSIZE)
        let dataBits = switch size {
        case tcflag_t(CS5): 5
        case tcflag_t(CS6): 6
        case tcflag_t(CS7): 7
        default: 8
        }
        let parity: SerialSettings.Parity = options.c_cflag & tcflag_t(PARENB) == 0 ? .none : (options.c_cflag & tcflag_t(PARODD) != 0 ? .odd : .even)
        let flow: SerialSettings.FlowControl =
            options.c_cflag & tcflag_t(TILL_CRTSCTS) != 0 ? .rtsCts : (options.c_iflag & tcflag_t(IXON) != 0 ? .xonXoff : .none)
        return SerialSettings(
            baud: SerialSettings.baud(cfgetospeed(&options)) ?? 0, dataBits: dataBits, parity: parity,
            stopBits: options.c_cflag & tcflag_t(CSTOPB) != 0 ? 2 : 1, flowControl: flow)
    }

    /// Takes the terminal for this descriptor alone: another open fails with EBUSY (TIOCEXCL),
    /// so a second program (a modem manager, a stray `cat`) cannot steal a scanner's bytes.
    public func lockTerminalExclusively() throws {
        try ioctl(TILL_TIOCEXCL, name: "TIOCEXCL")
    }

    /// Whether the terminal is held exclusively (TIOCGEXCL): the read-back of `lockTerminalExclusively`.
    public func isTerminalExclusive() throws -> Bool {
        var value: Int32 = 0
        try ioctl(TILL_TIOCGEXCL, name: "TIOCGEXCL", value: &value)
        return value != 0
    }

    /// Waits until everything written has been sent on the line.
    public func drainOutput() throws {
        try retryingInterrupts("tcdrain", description) { tcdrain(rawValue) }
    }

    /// Drops bytes received and not read yet (stale input from before tilld opened the port).
    public func discardInput() throws {
        try retryingInterrupts("tcflush", description) { tcflush(rawValue, TCIFLUSH) }
    }
}

/// A pseudo-terminal pair: what the demo uses as a serial line, and the tests as a device
/// that can be written to, read from and made to vanish.
public struct PseudoTerminal: Sendable {
    /// The side the simulated device holds.
    public let controller: FileDescriptor
    /// The path a driver opens as if it were `/dev/ttyUSB0`.
    public let devicePath: String

    /// Opens a new pair: /dev/ptmx, unlocked (TIOCSPTLCK), its number (TIOCGPTN) naming
    /// /dev/pts/N; what posix_openpt, unlockpt and ptsname do, without glibc's feature macros.
    /// The controller is non-blocking.
    public static func open() throws -> PseudoTerminal {
        let controller = try FileDescriptor.open("/dev/ptmx", .readWrite, options: [.noControllingTerminal, .nonBlocking])
        do {
            var locked: Int32 = 0
            try controller.ioctl(TILL_TIOCSPTLCK, name: "TIOCSPTLCK", value: &locked)
            var number: Int32 = -1
            try controller.ioctl(TILL_TIOCGPTN, name: "TIOCGPTN", value: &number)
            return PseudoTerminal(controller: controller, devicePath: "/dev/pts/\(number)")
        } catch {
            try? controller.close()
            throw error
        }
    }
}

extension FileDescriptor {
    /// Bytes written to a terminal and not yet sent on the line (TIOCOUTQ).
    public func outputQueued() throws -> Int {
        var count: Int32 = 0
        try ioctl(TILL_TIOCOUTQ, name: "TIOCOUTQ", value: &count)
        return Int(count)
    }
}

/// The modem control and status lines of a serial port (RS-232's other wires). A stand-alone
/// cash drawer is opened by pulsing an output (DTR or RTS) and says whether it is open on an
/// input (CTS, DSR or DCD) wired to its switch.
public struct ModemLines: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    // Outputs (set by the computer).
    public static let dtr = ModemLines(rawValue: TILL_TIOCM_DTR)
    public static let rts = ModemLines(rawValue: TILL_TIOCM_RTS)
    // Inputs (set by the device).
    public static let cts = ModemLines(rawValue: TILL_TIOCM_CTS)
    public static let dsr = ModemLines(rawValue: TILL_TIOCM_DSR)
    public static let dcd = ModemLines(rawValue: TILL_TIOCM_CAR)
    public static let ri = ModemLines(rawValue: TILL_TIOCM_RNG)
    /// The UART's loopback mode (outputs wired to inputs inside the chip: DTR→DSR, RTS→CTS).
    public static let loop = ModemLines(rawValue: TILL_TIOCM_LOOP)

    public var description: String {
        let names: [(ModemLines, String)] = [(.dtr, "DTR"), (.rts, "RTS"), (.cts, "CTS"), (.dsr, "DSR"), (.dcd, "DCD"), (.ri, "RI"), (.loop, "LOOP")]
        let set = names.filter { contains($0.0) }.map(\.1)
        return set.isEmpty ? "none" : set.joined(separator: "|")
    }
}

extension FileDescriptor {
    /// The modem lines' levels now (TIOCMGET). A pseudo-terminal and some adapters have none:
    /// ENOTTY or EINVAL.
    public func modemLines() throws -> ModemLines {
        var bits: Int32 = 0
        try ioctl(TILL_TIOCMGET, name: "TIOCMGET", value: &bits)
        return ModemLines(rawValue: bits)
    }

    /// Raises (TIOCMBIS) or drops (TIOCMBIC) the given outputs, leaving the others as they are.
    public func setModemLines(_ lines: ModemLines, on: Bool) throws {
        var bits = lines.rawValue
        if on {
            try ioctl(TILL_TIOCMBIS, name: "TIOCMBIS", value: &bits)
        } else {
            try ioctl(TILL_TIOCMBIC, name: "TIOCMBIC", value: &bits)
        }
    }

    /// Sets every line at once (TIOCMSET): how a test puts a UART in loopback and back.
    public func replaceModemLines(_ lines: ModemLines) throws {
        var bits = lines.rawValue
        try ioctl(TILL_TIOCMSET, name: "TIOCMSET", value: &bits)
    }
}
