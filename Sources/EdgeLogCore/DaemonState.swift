import Synchronization

/// Where the daemon is in its life, for /readyz and for refusing new work while draining.
public final class DaemonState: Sendable {
    public enum Phase: UInt8, Sendable {
        /// Recovering the log, connecting.
        case starting
        /// Recovery done, listeners up.
        case ready
        /// Draining after SIGTERM: no new ingest.
        case stopping
    }

    private let value = Atomic<UInt8>(Phase.starting.rawValue)

    public init(_ phase: Phase = .starting) {
        value.store(phase.rawValue, ordering: .relaxed)
    }

    public var phase: Phase {
        get { Phase(rawValue: value.load(ordering: .acquiring))! }
        set { value.store(newValue.rawValue, ordering: .releasing) }
    }
}
