#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import Logging
public import ServiceLifecycle
import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP

/// systemd's readiness protocol (`sd_notify(3)`) without libsystemd.
///
/// A `Type=notify` service gets the path of a datagram socket in `NOTIFY_SOCKET` and writes
/// newline-separated `KEY=VALUE` assignments to it, one datagram per message: `READY=1` when
/// it serves, `STOPPING=1` when it starts to shut down, `WATCHDOG=1` to keep the watchdog
/// from firing, `STATUS=` for `systemctl status`.
///
/// - `NOTIFY_SOCKET` is a filesystem path (`/run/systemd/notify`) or, when it starts with `@`,
///   a name in Linux's abstract socket namespace: the `@` becomes a NUL byte and the address
///   length counts exactly the name's bytes (no terminating NUL), as `sd_notify` does. Other
///   forms (`vsock:` and friends) are not supported: `notify` returns false.
/// - `WATCHDOG_USEC` is the unit's `WatchdogSec=` in microseconds; `WATCHDOG_PID`, when set,
///   names the process it is meant for (`sd_watchdog_enabled(3)`): a child that inherited
///   the environment must not pet the parent's watchdog.
///
/// Without `NOTIFY_SOCKET` (run by hand, in tests, by another supervisor) every message is a
/// no-op that returns false. A message that cannot be sent is not an error for the daemon:
/// the result is only informative.
///
/// Thread safety: a value type holding the parsed environment; each message opens, uses and
/// closes its own socket, so it can be used from any thread at once.
public struct SystemdNotifier: Sendable {
    /// `NOTIFY_SOCKET` as given, or nil when the daemon is not supervised by systemd.
    public let socketAddress: String?
    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as `sd_watchdog_enabled(3)`
    /// recommends; nil when the unit has no watchdog or it is meant for another process.
    public let watchdogInterval: Duration?

    /// Whether messages go anywhere.
    public var isEnabled: Bool { socketAddress != nil }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the process environment.
    public init() {
        var environment: [String: String] = [:]
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let value = getenv(name) {
                environment[name] = String(cString: value)
            }
        }
        self.init(environment: environment)
    }

    /// Reads the three variables from `environment`; `pid` is the process that
    /// `WATCHDOG_PID` must name (nil: this process).
    public init(environment: [String: String], pid: Int32? = nil) {
        if let address = environment["NOTIFY_SOCKET"], !address.isEmpty {
            self.socketAddress = address
        } else {
            self.socketAddress = nil
        }
        self.watchdogInterval = Self.watchdogInterval(
            environment: environment, pid: pid ?? getpid())
    }

    static func watchdogInterval(environment: [String: String], pid: Int32) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0,
            usec <= UInt64(Int64.max)
        else {
            return nil
        }
        if let pidText = environment["WATCHDOG_PID"] {
            guard let watchdogPID = Int32(pidText), watchdogPID == pid else { return nil }
        }
        return .microseconds(Int64(usec / 2))
    }

    // MARK: Messages

    /// `READY=1`, plus `STATUS=` when given: start-up (recovery included) is complete.
    /// Send it again after a reload, which `reloading()` started.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        if let status {
            return notify("READY=1\nSTATUS=\(Self.oneLine(status))")
        }
        return notify("READY=1")
    }

    /// `STOPPING=1`: graceful shutdown has begun.
    @discardableResult
    public func stopping() -> Bool {
        notify("STOPPING=1")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC now), which systemd 253 and later
    /// require for `Type=notify-reload` and older ones ignore. Follow with `ready()` when done.
    @discardableResult
    public func reloading() -> Bool {
        notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
    }

    /// `WATCHDOG=1`: the daemon is alive. See ``WatchdogService``.
    @discardableResult
    public func watchdog() -> Bool {
        notify("WATCHDOG=1")
    }

    /// `STATUS=`: one line for `systemctl status` (newlines become spaces).
    @discardableResult
    public func status(_ text: String) -> Bool {
        notify("STATUS=\(Self.oneLine(text))")
    }

    /// `EXTEND_TIMEOUT_USEC=`: asks for `duration` more before the current start or stop
    /// timeout fires, for a recovery scan or a drain that is progressing but slow.
    @discardableResult
    public func extendTimeout(by duration: Duration) -> Bool {
        let (seconds, attoseconds) = duration.components
        let usec = max(0, seconds) * 1_000_000 + max(0, attoseconds) / 1_000_000_000_000
        return notify("EXTEND_TIMEOUT_USEC=\(usec)")
    }

    /// Sends `state` as one datagram to `NOTIFY_SOCKET`. Returns false when there is no socket
    /// or the datagram was not sent whole (systemd gone, socket not reachable).
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketAddress else { return false }
        return Self.send(Array(state.utf8), to: socketAddress)
    }

    // MARK: Socket

    private static func send(_ payload: [UInt8], to address: String) -> Bool {
        var addressBytes = Array(address.utf8)
        var socketAddress = sockaddr_un()
        let pathCapacity = MemoryLayout.size(ofValue: socketAddress.sun_path)
        let isAbstract = addressBytes.first == UInt8(ascii: "@")
        if isAbstract {
            // Abstract namespace: a leading NUL, then the name; the length ends the name.
            addressBytes[0] = 0
            guard addressBytes.count <= pathCapacity else { return false }
        } else {
            // A path, NUL-terminated inside sun_path.
            guard addressBytes.first == UInt8(ascii: "/"), addressBytes.count < pathCapacity
            else {
                return false
            }
        }
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { path in
            path.copyBytes(from: addressBytes)  // the rest stays zero, so a path ends in NUL
        }
        let pathOffset =
            MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)
            ?? MemoryLayout<sa_family_t>.size
        let addressLength = pathOffset + addressBytes.count + (isAbstract ? 0 : 1)

        let fd = socket(AF_UNIX, datagramSocketType, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }

        let sent: Int = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &socketAddress) { addressPointer in
                addressPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                    var result: Int
                    repeat {
                        result = sendto(
                            fd, bytes.baseAddress, bytes.count, noSignalFlag, address,
                            socklen_t(addressLength))
                    } while result < 0 && errno == EINTR
                    return result
                }
            }
        }
        return sent == payload.count
    }

    #if canImport(Glibc)
    private static let datagramSocketType =
        Int32(bitPattern: SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue)
    private static let noSignalFlag = Int32(MSG_NOSIGNAL)
    #else
    private static let datagramSocketType = SOCK_DGRAM | SOCK_CLOEXEC
    private static let noSignalFlag = MSG_NOSIGNAL
    #endif

    private static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}

/// Pets systemd's watchdog (`WatchdogSec=`) every `SystemdNotifier.watchdogInterval` while
/// `isHealthy()` says the daemon works, so that a hung daemon is killed and restarted.
///
/// `isHealthy` is asked before every `WATCHDOG=1`; returning false stops the petting (the
/// daemon's own liveness checks, or a debug knob that simulates a hang), and systemd then
/// kills the process `WatchdogSec=` after the last pet, which `Restart=on-failure` restarts.
///
/// Put it first in the `ServiceGroup`: graceful shutdown runs in reverse order, so it keeps
/// petting while the services after it drain, and stops at its own graceful shutdown or at
/// cancellation. Without a watchdog it only waits for shutdown, so that its return does not
/// end the group early. systemd arms the watchdog only once `READY=1` has been sent, so a
/// long recovery before that is bounded by `TimeoutStartSec=`, not by the watchdog.
public struct WatchdogService: Service {
    private let notifier: SystemdNotifier
    private let interval: Duration?
    private let isHealthy: @Sendable () -> Bool
    private let logger: Logger

    /// - Parameters:
    ///   - interval: overrides `notifier.watchdogInterval` (tests); nil means the notifier's.
    ///   - isHealthy: asked before each pet; false skips it.
    public init(
        notifier: SystemdNotifier,
        interval: Duration? = nil,
        logger: Logger = Logger(label: "edgelog.watchdog"),
        isHealthy: @escaping @Sendable () -> Bool = { true }
    ) {
        self.notifier = notifier
        self.interval = interval ?? notifier.watchdogInterval
        self.isHealthy = isHealthy
        self.logger = logger
    }

    public func run() async throws {
        guard notifier.isEnabled, let interval, interval > .zero else {
            try? await gracefulShutdown()
            return
        }
        logger.info("systemd watchdog enabled", metadata: ["watchdog.interval": "\(interval)"])
        var wasHealthy = true
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let healthy = isHealthy()
            if healthy {
                notifier.watchdog()
            }
            if healthy != wasHealthy {
                if healthy {
                    logger.info("healthy again: petting the systemd watchdog")
                } else {
                    logger.warning(
                        "unhealthy: no longer petting the systemd watchdog, which will restart us")
                }
                wasHealthy = healthy
            }
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: interval)
                }
            } catch is CancellationError {
                return
            }
        }
    }
}
