public import Foundation
import TOMLKit
import TillWebPairing

/// till-web's settings: `/etc/tilld/till-web.toml` (or `--config`), each overridable by a flag.
///
/// ```toml
/// [web]
/// listen = "127.0.0.1:8069"   # Odoo's IoT port; loopback unless the POS runs on another machine
/// socket = "/run/tilld/tilld.sock"
/// origins = ["https://shop.odoo.com"]   # the pages allowed to use the till
/// print_retry_seconds = 60    # the same receipt picture again within this is a retry, not a reprint
/// state_dir = "/var/lib/till-web"   # pairing codes and the pages' tokens
/// customer_screen = true      # the customer-facing page at /screen
/// tls_listen = "0.0.0.0:443"  # HTTPS too (for a POS on another machine); absent: no HTTPS
/// tls_names = ["till.shop.lan"]  # names beyond the till's host name and addresses
/// clients = ["192.168.1.0/24"]   # the machines that may connect (loopback always); empty: any
/// ```
public struct WebConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8069
    public var socket = "/run/tilld/tilld.sock"
    public var origins: [String] = []
    public var printRetrySeconds = 60
    /// Pairing codes and the tokens pages were given.
    public var stateDirectory = PairingDirectory.defaultPath
    /// Serve the customer-facing screen (`/screen`).
    public var customerScreen = true
    /// Where to serve HTTPS as well (nil: not at all), with certificates from till-web's own
    /// authority (`state_dir/tls`).
    public var tlsListen: (host: String, port: Int)?
    /// Names the server certificate carries beyond the host name and the addresses.
    public var tlsNames: [String] = []
    /// The machines that may connect (`[web] clients`); empty: any that reach the port.
    public var clients: [String] = []

    public init() {}

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func == (a: WebConfig, b: WebConfig) -> Bool {
        a.host == b.host && a.port == b.port && a.socket == b.socket && a.origins == b.origins
            && a.printRetrySeconds == b.printRetrySeconds && a.stateDirectory == b.stateDirectory
            && a.customerScreen == b.customerScreen && a.tlsListen?.host == b.tlsListen?.host
            && a.tlsListen?.port == b.tlsListen?.port && a.tlsNames == b.tlsNames && a.clients == b.clients
    }

    /// `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (loopback).
    public mutating func setListen(_ text: String) throws {
        (host, port) = try Self.address(text, key: "listen", example: "\"127.0.0.1:8069\" (\"0.0.0.0:8069\" for the LAN)")
    }

    /// `tls_listen`, the same way.
    public mutating func setTLSListen(_ text: String) throws {
        tlsListen = try Self.address(text, key: "tls_listen", example: "\"0.0.0.0:443\" (Odoo's POS on HTTPS calls the IoT box on 443)")
    }

    static func address(_ text: String, key: String, example: String) throws -> (String, Int) {
        if let port = Int(text), (0...65535).contains(port) { return ("127.0.0.1", port) }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw Invalid(description: "\(key) = \"\(text)\": write HOST:PORT, e.g. \(example)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    public static func load(path: String) throws -> WebConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Invalid(description: "\(path): cannot be read (\(error.localizedDescription)); give --config another file, or none to use the flags")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String = "till-web.toml") throws -> WebConfig {
        var config = WebConfig()
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Invalid(description: "\(file):\(error.source.begin.line): \(error.description)")
        }
        for key in table.keys where key != "web" {
            throw Invalid(description: "\(file): [\(key)] is not a till-web section; its settings go under [web]")
        }
        guard let web = table["web"]?.table else { return config }
        for key in web.keys {
            switch key {
            case "listen":
                guard let value = web[key]?.string else { throw Invalid(description: "\(file): [web] listen must be a string like \"127.0.0.1:8069\"") }
                try config.setListen(value)
            case "socket":
                guard let value = web[key]?.string else { throw Invalid(description: "\(file): [web] socket must be a path") }
                config.socket = value
            case "origins":
                guard let array = web[key]?.array else { throw Invalid(description: "\(file): [web] origins must be a list of origins, e.g. [\"https://shop.odoo.com\"]") }
                config.origins = try array.map { value in
                    guard let origin = value.string, origin.hasPrefix("http://") || origin.hasPrefix("https://") else {
                        throw Invalid(description: "\(file): [web] origins: \(value) is not an origin; write scheme and host, e.g. \"https://shop.odoo.com\"")
                    }
                    return origin
                }
            case "state_dir":
                guard let value = web[key]?.string else { throw Invalid(description: "\(file): [web] state_dir must be a path") }
                config.stateDirectory = value
            case "print_retry_seconds":
                guard let value = web[key]?.int, value >= 0 else { throw Invalid(description: "\(file): [web] print_retry_seconds must be a whole number of seconds") }
                config.printRetrySeconds = value
            case "tls_listen":
                guard let value = web[key]?.string else { throw Invalid(description: "\(file): [web] tls_listen must be a string like \"0.0.0.0:443\"") }
                try config.setTLSListen(value)
            case "tls_names":
                guard let names = web[key]?.array?.compactMap({ $0.string }), names.count == web[key]?.array?.count else {
                    throw Invalid(description: "\(file): [web] tls_names must be a list of host names, e.g. [\"till.shop.lan\"]")
                }
                config.tlsNames = names
            case "clients":
                guard let entries = web[key]?.array?.compactMap({ $0.string }), entries.count == web[key]?.array?.count else {
                    throw Invalid(description: "\(file): [web] clients must be a list of addresses or networks, e.g. [\"192.168.1.20\", \"192.168.1.0/24\"]")
                }
                do { _ = try ClientPolicy(entries) } catch { throw Invalid(description: "\(file): [web] clients: \(error)") }
                config.clients = entries
            case "customer_screen":
                guard let value = web[key]?.bool else { throw Invalid(description: "\(file): [web] customer_screen must be true or false") }
                config.customerScreen = value
            default:
                throw Invalid(description: "\(file): [web] \(key) is not a till-web setting (listen, socket, origins, print_retry_seconds, state_dir, customer_screen, tls_listen, tls_names, clients)")
            }
        }
        return config
    }
}
