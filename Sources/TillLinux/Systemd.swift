import CSystemd
import TillSystem

/// The two systemd protocols the daemon speaks, through libsystemd.
public enum Systemd {
    /// Sends a state string ("READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=...") to the service
    /// manager. A no-op (returns false) when not started by systemd.
    /// The corresponding C function is `sd_notify`.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// Sockets passed by socket activation (`tilld.socket`), as file descriptors from 3 on.
    /// Unsets LISTEN_* so children do not inherit them. The corresponding C function is `sd_listen_fds`.
    public static func listenFileDescriptors() -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        return (0..<count).map { SD_LISTEN_FDS_START + $0 }
    }

    /// Whether a passed descriptor is a listening Unix stream socket. The corresponding C function is `sd_is_socket_unix`.
    public static func isListeningUnixSocket(_ fd: Int32) -> Bool {
        sd_is_socket_unix(fd, SocketConstants.streamType, 1, nil, 0) > 0
    }

    /// The watchdog interval systemd expects pings within, if enabled for this process.
    /// The corresponding C function is `sd_watchdog_enabled`.
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}
