// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tilld",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tilld", targets: ["tilld"]),
        .executable(name: "tillctl", targets: ["tillctl"]),
        .executable(name: "till-crm", targets: ["till-crm"]),
        .library(name: "TillCore", targets: ["TillCore"]),
        .library(name: "TillClient", targets: ["TillClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // till-web's HTTPS on the LAN: TLS, and the local certificate authority it makes.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // System libraries: module map + shim header only.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // Pure value types: the wire protocol, events, receipts. Foundation only, no Glibc.
        .target(name: "TillCore"),
        // Pure ESC/POS: receipt -> bytes, code pages, barcodes, raster, status bytes -> status,
        // bytes -> text (the virtual printer). No I/O.
        .target(name: "TillESCPOS", dependencies: ["TillCore", "CDither"]),
        // Floyd-Steinberg over eight rows at once (vector lanes): a logo is dithered for every receipt.
        .target(name: "CDither"),
        // libjpeg (Debian libjpeg62-turbo-dev) behind two calls that cannot end the process:
        // the receipt pictures a browser POS sends (till-web).
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        // Pure pole-display command sets (Epson DM-D, CD5220) and layout.
        .target(name: "TillDisplay", dependencies: ["TillESCPOS"]),
        // libpng (receipt logos) and libqrencode (QR codes as pictures for printers without
        // GS ( k): what the encoder needs beyond byte work.
        .systemLibrary(name: "CLibPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .target(name: "TillImaging", dependencies: ["TillESCPOS", "TillCore", "CLibPNG", "CQREncode"]),
        // libusb: USB printers without the usblp kernel driver in the way.
        .systemLibrary(name: "CLibUSB", pkgConfig: "libusb-1.0", providers: [.apt(["libusb-1.0-0-dev"])]),
        // libudev: what is plugged in, and a monitor for what comes and goes (hotplug).
        .systemLibrary(name: "CLibUDev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        // Pure scanner logic: symbology guessing, check digits, classification.
        .target(name: "TillScanner", dependencies: ["TillCore"]),
        // libevdev (keyboard-wedge scanners) and libxkbcommon (their keyboard layouts, no X).
        .systemLibrary(name: "CEvdev", pkgConfig: "libevdev", providers: [.apt(["libevdev-dev"])]),
        .systemLibrary(name: "CXKBCommon", pkgConfig: "xkbcommon", providers: [.apt(["libxkbcommon-dev"])]),
        // ioctl is variadic: typed wrappers Swift can call.
        .target(name: "CTillSystem"),
        // The system-call seam (Glibc and CTillSystem only): file descriptors, errors named by
        // their call, EINTR retried in one place, readiness, termios, ptys. Also what till-crm
        // needs of the OS, without linking anything about devices (layering rule 4).
        .target(name: "TillSystem", dependencies: ["CTillSystem"]),
        // Linux interfaces of the daemon: peer credentials, users and groups, libsystemd.
        .target(
            name: "TillLinux",
            dependencies: [
                "CSystemd", "TillSystem",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Transports: the byte stream drivers speak, over serial lines, usblp and TCP.
        .target(name: "TillTransport", dependencies: ["TillSystem", "CEvdev", "CLibUSB", "CLibUDev"]),
        // Key codes to text under a keyboard layout, through libxkbcommon.
        .target(name: "TillKeymap", dependencies: ["CXKBCommon"]),
        // Scripted transports for driver tests (injected EIO, ENODEV, EAGAIN, partial writes).
        .target(name: "TillTransportTesting", dependencies: ["TillTransport", "TillSystem"]),
        // The device API: roles, typed device events, the sink drivers emit to, the driver
        // registry. What a driver sees of tilld; it never sees the journal or the bus.
        .target(name: "TillDevices", dependencies: ["TillCore", "TillScanner", "TillESCPOS"]),
        // Drivers (protocol logic over a transport) and the demo devices, each on the code path
        // of a real device.
        .target(
            name: "TillDrivers",
            dependencies: ["TillDevices", "TillTransport", "TillSystem", "TillScanner", "TillCore", "TillKeymap", "TillESCPOS", "TillImaging", "TillDisplay"],
            // Data read at run time from the source tree or /usr/share/tilld/quirks (docs/devices.md), not compiled in.
            exclude: ["Quirks"]),
        // SQLite through GRDB, as tilld's journal and till-crm's store both need it: durability in force.
        .target(name: "TillSQLite", dependencies: [.product(name: "GRDB", package: "GRDB.swift")]),
        // Line framing shared by the server and clients (NIO, no Glibc).
        .target(name: "TillNIO", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // The daemon: journal, bus, socket server, access control, devices.
        .target(
            name: "TillDaemon",
            dependencies: [
                "TillCore", "TillScanner", "TillLinux", "TillSystem", "TillNIO", "TillSQLite", "TillDevices", "TillDrivers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // libphonenumber (Debian libphonenumber-dev) behind a C face, and its Swift wrapper.
        .target(
            name: "CPhoneNumber",
            linkerSettings: [.linkedLibrary("phonenumber"), .linkedLibrary("stdc++")]
        ),
        .target(name: "TillPhoneNumber", dependencies: ["CPhoneNumber", "TillCore"]),
        // Customer memory: identifiers, the customer store, timeline rules (till-crm).
        .target(
            name: "TillCRM",
            dependencies: [
                "TillCore", "TillPhoneNumber", "TillClient", "TillSystem", "TillSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The outbox's webhooks and the Twenty mapping: HTTPS with pooled connections.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // A chain of shops: one customer memory on PostgreSQL (PostgresCRMStore).
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // A socket client any Swift program (tillctl, till-crm) can use.
        .target(
            name: "TillClient",
            dependencies: [
                "TillCore", "TillNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tilld",
            dependencies: [
                "TillDaemon", "TillLinux", "TillSystem", "TillCore", "TillScanner", "TillSQLite", "TillDevices", "TillDrivers", "TillTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The browser bridge (till-web): HTTP for web POS software, Odoo's IoT box routes; a client
        // of tilld's socket like till-crm.
        // Pairing a web page with the till: codes tillctl writes, tokens till-web keeps.
        .target(name: "TillWebPairing", dependencies: ["TillSystem"]),
        // HTTPS for the LAN: the local certificate authority and the server's TLS context.
        .target(
            name: "TillWebTLS",
            dependencies: [
                "TillSystem",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "TillWeb",
            dependencies: [
                "TillCore", "TillClient", "TillNIO", "TillESCPOS", "TillImaging", "TillSystem", "TillWebPairing", "TillWebTLS", "CJPEG",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "till-web",
            dependencies: [
                "TillWeb", "TillWebPairing", "TillWebTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tillctl",
            dependencies: [
                "TillCore", "TillClient", "TillESCPOS", "TillImaging", "TillWebPairing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "till-crm",
            dependencies: [
                "TillCRM", "TillCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Scan decoding throughput (docs/benchmarks.md); not a test: run it in release.
        .executableTarget(name: "till-scan-bench", dependencies: ["TillScanner"], path: "Benchmarks/ScanBench"),
        // The event path's protocol work per publish (docs/benchmarks.md); not a test: run it in release.
        .executableTarget(name: "till-wire-bench", dependencies: ["TillCore"], path: "Benchmarks/WireBench"),
        // Receipt encoding and rasterising (docs/benchmarks.md, Benchmarks/escpos_bench.py); run it in release.
        .executableTarget(name: "till-escpos-bench", dependencies: ["TillESCPOS", "TillImaging", "TillCore"], path: "Benchmarks/ESCPOSBench"),
        // till-crm figures (docs/benchmarks.md); not a test: run it in release.
        .executableTarget(
            name: "till-crm-bench",
            dependencies: ["TillCRM", "TillCore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Benchmarks/CRMBench"
        ),
        .executableTarget(
            name: "till-crm-identity-bench",
            dependencies: ["TillCRM", "TillCore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Benchmarks/IdentityBench"
        ),
        // Fixtures are read at run time through #filePath, not bundled.
        .testTarget(name: "TillCoreTests", dependencies: ["TillCore", "TillScanner", "TillTransportTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "TillESCPOSTests", dependencies: ["TillESCPOS", "TillCore", "TillImaging", "TillDisplay", "TillTransportTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "TillClientTests", dependencies: ["TillClient"]),
        .testTarget(
            name: "TillWebTests",
            dependencies: [
                "TillWeb", "TillWebPairing", "TillWebTLS", "TillCore", "TillESCPOS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "TillTransportTests", dependencies: ["TillTransport", "TillTransportTesting", "TillSystem"]),
        .testTarget(
            name: "TillCRMTests",
            dependencies: [
                "TillCRM", "TillPhoneNumber", "TillSQLite", "TillCore", "TillSystem",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                // A local HTTP receiver and a fake Twenty for the outbox.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "TillDaemonTests",
            dependencies: [
                "TillDaemon", "TillCore", "TillNIO", "TillLinux", "TillSystem", "TillDevices", "TillDrivers", "TillTransport", "TillTransportTesting", "TillScanner",
                "TillESCPOS",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TillCore", "TillClient", "TillESCPOS", "TillTransportTesting", "TillWeb", "tilld", "tillctl", "till-crm", "till-web",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

package.cxxLanguageStandard = .cxx17

// Strict settings for every target, in one place (Swift settings only apply to Swift targets).
for target in package.targets where target.type != .system && target.name != "CPhoneNumber" {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ])
    target.swiftSettings = settings
}
