import CXKBCommon

/// What a keyboard layout makes of key presses: a keyboard-wedge scanner sends key positions
/// (evdev key codes), and the characters they stand for depend on the layout the scanner was
/// set up for ("de": the key labelled Y on a US keyboard types z). libxkbcommon reads the
/// system's layouts (xkb-data); no X server is involved.
///
/// Not thread-safe: one per device, used by the device's reader only.
public final class Keymap {
    public struct UnknownLayout: Error, CustomStringConvertible {
        public var layout: String
        public var variant: String?
        public var description: String {
            "no keyboard layout \"\(layout)\"\(variant.map { " variant \"\($0)\"" } ?? ""): use an xkb name such as us, de, fr, be, gb, es, it, se (ls /usr/share/X11/xkb/symbols lists them)"
        }
    }

    public let layout: String
    public let variant: String?
    private let context: OpaquePointer
    private let keymap: OpaquePointer
    private var state: OpaquePointer

    public init(layout: String = "us", variant: String? = nil) throws {
        self.layout = layout
        self.variant = variant
        // No environment: a till's keymap must not change with XKB_DEFAULT_LAYOUT in tilld's environment.
        guard let context = xkb_context_new(XKB_CONTEXT_NO_ENVIRONMENT_NAMES) else { throw UnknownLayout(layout: layout, variant: variant) }
        let made: OpaquePointer? = "evdev".withCString { rules in
            "pc105".withCString { model in
                layout.withCString { layoutName in
                    (variant ?? "").withCString { variantName in
                        var names = xkb_rule_names(rules: rules, model: model, layout: layoutName, variant: variantName, options: nil)
                        return xkb_keymap_new_from_names(context, &names, XKB_KEYMAP_COMPILE_NO_FLAGS)
                    }
                }
            }
        }
        guard let made, let state = xkb_state_new(made) else {
            xkb_context_unref(context)
            throw UnknownLayout(layout: layout, variant: variant)
        }
        self.context = context
        keymap = made
        self.state = state
    }

    deinit {
        xkb_state_unref(state)
        xkb_keymap_unref(keymap)
        xkb_context_unref(context)
    }

    /// A key went down: the text it types under the current modifiers ("" for Shift itself).
    public func press(_ keyCode: UInt16) -> String {
        let code = xkb_keycode_t(keyCode) + 8  // evdev codes are offset by 8 in xkb
        var buffer = [CChar](repeating: 0, count: 16)
        let length = xkb_state_key_get_utf8(state, code, &buffer, buffer.count)
        xkb_state_update_key(state, code, XKB_KEY_DOWN)
        guard length > 0 else { return "" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func release(_ keyCode: UInt16) {
        xkb_state_update_key(state, xkb_keycode_t(keyCode) + 8, XKB_KEY_UP)
    }

    /// Forgets which keys are down (after the kernel dropped events: a Shift held might be lost).
    public func reset() {
        if let fresh = xkb_state_new(keymap) {
            xkb_state_unref(state)
            state = fresh
        }
    }
}
