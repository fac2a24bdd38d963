import Glibc

/// Look-ups in the system's user and group database (NSS: /etc/passwd, /etc/group, LDAP...).
public enum UserDirectory {
    /// The user name of a uid, or nil if the uid has no entry.
    /// The corresponding C function is `getpwuid_r`.
    public static func userName(uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.pw_name)
    }

    /// The gid of a group name. The corresponding C function is `getgrnam_r`.
    public static func groupID(name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// Every group a user belongs to, the primary one included.
    /// The corresponding C function is `getgrouplist`.
    public static func groupIDs(userName: String, primaryGroup: UInt32) -> Set<UInt32> {
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let capacity = count
            if getgrouplist(userName, primaryGroup, &groups, &count) >= 0 {
                return Set(groups.prefix(Int(count)))
            }
            if count <= capacity { count = capacity * 2 }
        }
    }

    public static var currentUserID: UInt32 { getuid() }

    /// The process's groups: its primary group and its supplementary ones (getgroups).
    public static var currentGroupIDs: Set<UInt32> {
        let count = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(count, 0)))
        let got = getgroups(count, &groups)
        return Set(groups.prefix(Int(max(got, 0)))).union([getegid()])
    }
}
