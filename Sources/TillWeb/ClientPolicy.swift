import TillSystem

/// Which machines may talk to the bridge at all, by their address: `[web] clients`, addresses
/// and networks (`192.168.1.20`, `192.168.1.0/24`, `fd00::/64`). Loopback is always allowed
/// (the till itself); an empty list allows every machine that reaches the port.
///
/// Why an address list as well as the origin list: `Origin` is what a browser says about the
/// page, and any other program can send whatever it likes. Odoo's IoT box routes carry no
/// token (Odoo's POS sends none), so on the LAN the address of the machine is what tells the
/// POS's own computers from a phone on the shop's Wi-Fi.
public struct ClientPolicy: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int
    }
    private let networks: [Network]
    /// The till itself (127.0.0.0/8, ::1); false only in tests of the refusal.
    private let loopback: Bool

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(_ entries: [String], loopback: Bool = true) throws(Invalid) {
        self.loopback = loopback
        var networks: [Network] = []
        for entry in entries {
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard let address = parts.first.flatMap({ NetworkAddress.bytes(String($0)) }) else {
                throw Invalid(description: "\(entry) is not an address or a network; write e.g. \"192.168.1.20\" or \"192.168.1.0/24\"")
            }
            let most = address.count * 8
            let prefix = parts.count == 2 ? Int(parts[1]) : most
            guard let prefix, (0...most).contains(prefix) else {
                throw Invalid(description: "\(entry): the part after / must be a prefix length from 0 to \(most)")
            }
            networks.append(Network(bytes: address, prefix: prefix))
        }
        self.networks = networks
    }

    public var allowsEveryone: Bool { networks.isEmpty }

    /// No list: every machine that reaches the port.
    public static let everyone = try! ClientPolicy([])

    /// Whether a machine at `address` (as NIO gives it: "192.168.1.20", "::1") may use the bridge.
    public func admits(_ address: String?) -> Bool {
        guard let address, var bytes = NetworkAddress.bytes(address) else { return networks.isEmpty }
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { bytes = Array(bytes[12...]) }
        if loopback, bytes.count == 4 ? bytes[0] == 127 : bytes == Array(repeating: 0, count: 15) + [1] { return true }
        if networks.isEmpty { return true }
        return networks.contains { network in
            guard network.bytes.count == bytes.count else { return false }
            var left = network.prefix
            for index in bytes.indices where left > 0 {
                let bits = min(8, left)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if bytes[index] & mask != network.bytes[index] & mask { return false }
                left -= bits
            }
            return true
        }
    }
}
