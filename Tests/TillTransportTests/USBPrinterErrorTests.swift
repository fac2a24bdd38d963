import Testing
@testable import TillTransport

/// libusb's errors as a technician meets them: each names what to do.
@Suite("USB printer errors")
struct USBPrinterErrorTests {
    @Test("busy, access, gone and stalled each say what to check", arguments: [
        (Int32(-6), TransportError.Kind.busy, ["another program holds it", "usblp", "/dev/usb/lp0"]),
        (Int32(-3), TransportError.Kind.permission, ["udev rules", "replug"]),
        (Int32(-4), TransportError.Kind.unplugged, ["unplugged", "picks it up again"]),
        (Int32(-9), TransportError.Kind.io, ["switch the printer off and on"]),
    ])
    func errors(code: Int32, kind: TransportError.Kind, says: [String]) {
        let error = USBPrinterStream.error(code, "USB 04b8:0e15", doing: "claim the printer interface of")
        #expect(error.kind == kind)
        for phrase in says { #expect(error.message.contains(phrase), "\(error.message)") }
        #expect(error.isTransient == (kind == .unplugged || kind == .io))
    }
}
