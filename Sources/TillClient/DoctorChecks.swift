/// The judgements `tillctl doctor` makes, as pure functions (what it reads from the system is
/// passed in), so each is tested on its own.
public enum DoctorChecks {
    /// Whether a process with `uid` and `gids` may read and write a node with this mode, owner
    /// and group (as the kernel decides it for a character device: owner bits, else group, else
    /// other; root may always).
    public static func mayReadWrite(mode: Int, owner: UInt32, group: UInt32, uid: UInt32, gids: Set<UInt32>) -> Bool {
        if uid == 0 { return true }
        if uid == owner { return mode & 0o600 == 0o600 }
        if gids.contains(group) { return mode & 0o060 == 0o060 }
        return mode & 0o006 == 0o006
    }

    /// "crw-rw---- root:till": what a node's mode, owner and group look like in `ls -l`.
    public static func describe(mode: Int, owner: String, group: String) -> String {
        let bits = [(0o400, "r"), (0o200, "w"), (0o100, "x"), (0o040, "r"), (0o020, "w"), (0o010, "x"), (0o004, "r"), (0o002, "w"), (0o001, "x")]
        return "c" + bits.map { mode & $0.0 != 0 ? $0.1 : "-" }.joined() + " \(owner):\(group)"
    }

    /// The installed rules against the ones this tilld makes: nil when they agree, else what is
    /// wrong and what to run.
    public static func udevRulesProblem(installed: String?, expected: String, path: String) -> (problem: String, fix: String)? {
        let install = "tilld --udev-rules > /etc/udev/rules.d/60-tilld.rules && udevadm control --reload && udevadm trigger"
        guard let installed else { return ("tilld's udev rules are not installed: device nodes keep root-only modes and ModemManager probes serial devices", install) }
        if installed != expected { return ("\(path) is not the rules this tilld makes (an older version, or edited)", install) }
        return nil
    }
}
