import Synchronization

/// Test-only failure injection for system calls on files under a path prefix, so that tests can
/// prove what happens after a failed fsync or write without a failing disk. Costs one relaxed
/// atomic load per call when unused.
enum FaultInjection {
    enum Operation: Sendable { case write, sync }

    struct Rule: Sendable {
        var pathPrefix: String
        var operation: Operation
        var errno: Int32
    }

    private static let armed = Atomic<Bool>(false)
    private static let rules = Mutex<[Rule]>([])

    static func inject(_ rule: Rule) {
        rules.withLock { $0.append(rule) }
        armed.store(true, ordering: .releasing)
    }

    static func clear(pathPrefix: String) {
        rules.withLock { rules in
            rules.removeAll { $0.pathPrefix == pathPrefix }
            armed.store(!rules.isEmpty, ordering: .releasing)
        }
    }

    /// The errno to fail `operation` on `path` with, if a rule says so.
    @inline(__always)
    static func failure(for operation: Operation, path: String) -> Int32? {
        guard armed.load(ordering: .acquiring) else { return nil }
        return rules.withLock { rules in
            rules.first { $0.operation == operation && path.hasPrefix($0.pathPrefix) }?.errno
        }
    }
}
