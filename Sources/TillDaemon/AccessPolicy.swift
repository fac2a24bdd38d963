public import TillCore
public import TillLinux
public import TillSystem

/// A connected peer as the access policy sees it: the kernel's credentials plus the
/// user name and groups looked up once at connect time.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public var credentials: PeerCredentials
    public var userName: String?
    public var groupIDs: Set<UInt32>

    public init(credentials: PeerCredentials, userName: String?, groupIDs: Set<UInt32>) {
        self.credentials = credentials
        self.userName = userName
        self.groupIDs = groupIDs
    }

    /// Looks up the peer's user and every group it belongs to.
    public static func resolve(_ credentials: PeerCredentials) -> PeerIdentity {
        let name = UserDirectory.userName(uid: credentials.uid)
        var groups: Set<UInt32> = [credentials.gid]
        if let name { groups.formUnion(UserDirectory.groupIDs(userName: name, primaryGroup: credentials.gid)) }
        return PeerIdentity(credentials: credentials, userName: name, groupIDs: groups)
    }

    public var description: String {
        "uid \(credentials.uid)\(userName.map { " (\($0))" } ?? "") pid \(credentials.pid)"
    }
}

/// Decides what a peer may do, from `[access]`. Root and the daemon's own user may do
/// everything; `act` implies `read`.
public struct AccessPolicy: Sendable {
    public var rules: AccessRules
    public var daemonUID: UInt32
    private var actGroupIDs: Set<UInt32>
    private var readGroupIDs: Set<UInt32>

    public init(rules: AccessRules, daemonUID: UInt32 = UserDirectory.currentUserID) {
        self.rules = rules
        self.daemonUID = daemonUID
        actGroupIDs = Set(rules.actGroups.compactMap { UserDirectory.groupID(name: $0) })
        readGroupIDs = Set(rules.readGroups.compactMap { UserDirectory.groupID(name: $0) })
    }

    /// Group names in the rules that do not exist on this system (worth a warning at start).
    public var unknownGroups: [String] {
        (rules.actGroups + rules.readGroups).filter { UserDirectory.groupID(name: $0) == nil }
    }

    public func granted(to peer: PeerIdentity) -> Permission? {
        if peer.credentials.uid == 0 || peer.credentials.uid == daemonUID { return .act }
        if let name = peer.userName, rules.actUsers.contains(name) { return .act }
        if !peer.groupIDs.isDisjoint(with: actGroupIDs) { return .act }
        if let name = peer.userName, rules.readUsers.contains(name) { return .read }
        if !peer.groupIDs.isDisjoint(with: readGroupIDs) { return .read }
        return nil
    }

    public func permits(_ permission: Permission, _ peer: PeerIdentity) -> Bool {
        guard let granted = granted(to: peer) else { return false }
        return granted >= permission
    }

    /// The `forbidden` message: who was refused what, and how to grant it.
    public func refusal(_ op: String, _ permission: Permission, _ peer: PeerIdentity, configPath: String) -> String {
        let who = peer.userName.map { "user \($0) (uid \(peer.credentials.uid))" } ?? "uid \(peer.credentials.uid)"
        switch permission {
        case .act:
            return "\(who) may not \(op): add the user to act_users, or to a group in act_groups, under [access] in \(configPath), then reload tilld (SIGHUP)"
        case .read:
            return "\(who) may not \(op): add the user to a group in read_groups under [access] in \(configPath), then reload tilld (SIGHUP)"
        }
    }
}
