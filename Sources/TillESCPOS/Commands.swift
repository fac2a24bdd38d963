/// ESC/POS command bytes (Epson's ESC/POS reference; HARDWARE.md). Only byte builders: what
/// to send when is the encoder's business.
public enum ESCPOS {
    public static let esc: UInt8 = 0x1B
    public static let gs: UInt8 = 0x1D
    public static let dle: UInt8 = 0x10
    public static let lf: UInt8 = 0x0A

    /// `ESC @`: back to power-on state (styles off, page 0, left aligned).
    public static let initialize: [UInt8] = [esc, 0x40]

    public static func bold(_ on: Bool) -> [UInt8] { [esc, 0x45, on ? 1 : 0] }
    public static func underline(_ on: Bool) -> [UInt8] { [esc, 0x2D, on ? 1 : 0] }
    /// `GS B`: white on black.
    public static func inverse(_ on: Bool) -> [UInt8] { [gs, 0x42, on ? 1 : 0] }
    /// `GS !`: width and height multipliers, 1 to 8 each.
    public static func size(width: Int, height: Int) -> [UInt8] {
        [gs, 0x21, UInt8((min(max(width, 1), 8) - 1) << 4 | (min(max(height, 1), 8) - 1))]
    }
    /// `ESC a`: 0 left, 1 centre, 2 right.
    public static func align(_ value: UInt8) -> [UInt8] { [esc, 0x61, value] }
    /// `ESC t`: the character table.
    public static func codePage(_ number: Int) -> [UInt8] { [esc, 0x74, UInt8(number)] }
    /// `ESC d`: print and feed n lines.
    public static func feed(lines: Int) -> [UInt8] { [esc, 0x64, UInt8(min(max(lines, 0), 255))] }
    /// `GS V 65/66 n`: feed to the cutter, then cut (full or partial).
    public static func cut(partial: Bool) -> [UInt8] { [gs, 0x56, partial ? 66 : 65, 0] }
    /// `ESC p m t1 t2`: a kick on connector pin 2 (m 0) or 5 (m 1), on t1×2 ms, off t2×2 ms.
    public static func drawerKick(pin: Int, onMilliseconds: Int) -> [UInt8] {
        let on = UInt8(min(max(onMilliseconds / 2, 1), 255))
        // Off at least four times as long as on: the solenoid's duty cycle stays under 20 %.
        let off = UInt8(min(Int(on) * 4, 255))
        return [esc, 0x70, pin == 5 ? 1 : 0, on, off]
    }
    /// Which peripheral the bytes that follow are for (`ESC = n`): a customer display chained
    /// through the printer gets what comes after `.display`, until `.printer`.
    public enum Peripheral: UInt8, Sendable { case printer = 1, display = 2, both = 3 }
    public static func selectPeripheral(_ peripheral: Peripheral) -> [UInt8] { [esc, 0x3D, peripheral.rawValue] }
    /// `DLE EOT n`: real-time status, one byte back (n 1 printer, 2 offline cause, 3 error cause, 4 paper).
    public static func statusQuery(_ n: UInt8) -> [UInt8] { [dle, 0x04, n] }
    /// `GS a n`: Automatic Status Back on changes (0 turns it off).
    public static func automaticStatusBack(_ mask: UInt8) -> [UInt8] { [gs, 0x61, mask] }
    /// `ESC 3 n` line spacing in dots; `ESC 2` back to the default.
    public static func lineSpacing(_ dots: UInt8?) -> [UInt8] { dots.map { [esc, 0x33, $0] } ?? [esc, 0x32] }
    /// `ESC = n`: which device on the line takes the bytes that follow: 1 printer, 2 display.
    public static func selectPeripheral(_ n: UInt8) -> [UInt8] { [esc, 0x3D, n] }

    static func littleEndian16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
}
