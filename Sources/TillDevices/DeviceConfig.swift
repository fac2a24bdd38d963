public import TillCore

/// What a device is for: the contract's roles.
public enum DeviceRole: String, Sendable, Hashable, CaseIterable {
    case printer, scanner, drawer, display
}

/// One `[[device]]` entry as the config file gave it: the common keys, and every other key
/// (the driver's options) with the line it is on, for the driver's schema to check.
public struct DeviceConfig: Sendable, Hashable {
    public var name: String
    public var role: DeviceRole
    public var driver: String
    /// Everything else in the table (path, usb, host, port, baud, profile, ...), for the driver.
    public var options: [String: JSONValue]
    /// The line of the `[[device]]` header.
    public var line: Int?
    /// The line of each option's `key =`.
    public var optionLines: [String: Int]

    public init(name: String, role: DeviceRole, driver: String, options: [String: JSONValue] = [:], line: Int? = nil, optionLines: [String: Int] = [:]) {
        self.name = name
        self.role = role
        self.driver = driver
        self.options = options
        self.line = line
        self.optionLines = optionLines
    }

    /// Kept for the daemon's call sites: `DeviceConfig.Role` is `DeviceRole`.
    public typealias Role = DeviceRole
}
