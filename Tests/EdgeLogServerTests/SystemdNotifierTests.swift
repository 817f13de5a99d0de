import EdgeLogServer
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The systemd side of `sd_notify`: a bound AF_UNIX datagram socket, at a path in a fresh
/// temporary directory or under a name in the abstract namespace. Its address is built here
/// independently of `SystemdNotifier`, so a wrong address length on either side shows up as
/// a datagram that never arrives.
private final class NotifySocket {
    /// What goes into `NOTIFY_SOCKET`.
    let address: String
    private let fd: Int32
    private let directory: String?

    /// A socket at `<temporary directory>/notify`.
    init() throws {
        var template = Array("/tmp/edgelog-notify-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw Failure("mkdtemp: errno \(errno)") }
        let directory = String(cString: created)
        self.directory = directory
        self.address = directory + "/notify"
        self.fd = try Self.makeSocket(boundTo: address)
    }

    /// A socket named `@<name>` in the abstract namespace.
    init(abstractName name: String) throws {
        self.directory = nil
        self.address = "@" + name
        self.fd = try Self.makeSocket(boundTo: address)
    }

    deinit {
        close(fd)
        if let directory {
            unlink(address)
            rmdir(directory)
        }
    }

    /// The next datagram's bytes, or nil when none arrives within `timeout`. Polls without
    /// blocking a thread of the cooperative pool.
    func receive(timeout: Duration = .seconds(5)) async throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes {
                recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
            }
            if count >= 0 {
                return Array(buffer[..<count])
            }
            guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                throw Failure("recv: errno \(errno)")
            }
            if ContinuousClock.now >= deadline {
                return nil
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func receiveString(timeout: Duration = .seconds(5)) async throws -> String? {
        try await receive(timeout: timeout).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func makeSocket(boundTo address: String) throws -> Int32 {
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        let isAbstract = bytes.first == UInt8(ascii: "@")
        if isAbstract {
            bytes[0] = 0
        }
        precondition(bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path))
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { $0.copyBytes(from: bytes) }
        // sun_family is 2 bytes on Linux; an abstract name is exactly its bytes, a path also
        // counts its NUL.
        let length = 2 + bytes.count + (isAbstract ? 0 : 1)

        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(bitPattern: SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)
        #endif
        guard fd >= 0 else { throw Failure("socket: errno \(errno)") }
        let result = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(length))
            }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw Failure("bind \(address): errno \(error)")
        }
        return fd
    }
}

private struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func uniqueAbstractName() -> String {
    "edgelog-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
}

private let quietLogger = Logger(
    label: "test.watchdog", factory: { _ in SwiftLogNoOpLogHandler() })

private func monotonicMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
}

@Suite struct SystemdNotifierTests {
    @Test func sendsExactBytesToAPathSocket() async throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])
        #expect(notifier.isEnabled)

        #expect(notifier.ready(status: "recovered 3 partitions"))
        #expect(try await socket.receive() == Array("READY=1\nSTATUS=recovered 3 partitions".utf8))
        #expect(notifier.stopping())
        #expect(try await socket.receive() == Array("STOPPING=1".utf8))
        #expect(notifier.watchdog())
        #expect(try await socket.receive() == Array("WATCHDOG=1".utf8))
        #expect(notifier.ready())
        #expect(try await socket.receive() == Array("READY=1".utf8))
        #expect(notifier.status("draining\n2 partitions"))
        #expect(try await socket.receive() == Array("STATUS=draining 2 partitions".utf8))
        #expect(notifier.extendTimeout(by: .seconds(90)))
        #expect(try await socket.receive() == Array("EXTEND_TIMEOUT_USEC=90000000".utf8))
    }

    @Test func sendsExactBytesToAnAbstractSocket() async throws {
        let socket = try NotifySocket(abstractName: uniqueAbstractName())
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])

        #expect(notifier.ready(status: "up"))
        #expect(try await socket.receive() == Array("READY=1\nSTATUS=up".utf8))
        #expect(notifier.stopping())
        #expect(try await socket.receive() == Array("STOPPING=1".utf8))
        #expect(notifier.watchdog())
        #expect(try await socket.receive() == Array("WATCHDOG=1".utf8))
    }

    @Test func reloadingCarriesTheMonotonicClock() async throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])

        let before = monotonicMicroseconds()
        #expect(notifier.reloading())
        let after = monotonicMicroseconds()
        let message = try #require(try await socket.receiveString())
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2)
        #expect(lines.first == "RELOADING=1")
        let prefix = "MONOTONIC_USEC="
        let clockLine = try #require(lines.last)
        #expect(clockLine.hasPrefix(prefix))
        let usec = try #require(UInt64(clockLine.dropFirst(prefix.count)))
        #expect(before <= usec && usec <= after)
    }

    @Test func withoutNotifySocketEverythingIsANoOp() {
        for environment in [[:], ["NOTIFY_SOCKET": ""]] as [[String: String]] {
            let notifier = SystemdNotifier(environment: environment)
            #expect(!notifier.isEnabled)
            #expect(!notifier.ready(status: "x"))
            #expect(!notifier.stopping())
            #expect(!notifier.reloading())
            #expect(!notifier.watchdog())
            #expect(!notifier.notify("STATUS=x"))
            #expect(notifier.watchdogInterval == nil)
        }
    }

    @Test func anUnreachableSocketReportsFailure() throws {
        let socket = try NotifySocket()
        let missing = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address + "-missing"])
        #expect(!missing.watchdog())
        let unbound = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + uniqueAbstractName()])
        #expect(!unbound.watchdog())
        let unsupported = SystemdNotifier(environment: ["NOTIFY_SOCKET": "vsock:2:1234"])
        #expect(!unsupported.watchdog())
        let tooLong = SystemdNotifier(
            environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)])
        #expect(!tooLong.watchdog())
    }

    @Test func watchdogIntervalIsHalfOfWatchdogUsec() {
        let pid = getpid()
        let ours = SystemdNotifier(
            environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(pid)"])
        #expect(ours.watchdogInterval == .seconds(1))

        let noPID = SystemdNotifier(environment: ["WATCHDOG_USEC": "2000000"])
        #expect(noPID.watchdogInterval == .seconds(1))

        let explicitPID = SystemdNotifier(
            environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"], pid: 4242)
        #expect(explicitPID.watchdogInterval == .seconds(15))

        let theirs = SystemdNotifier(
            environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "\(pid + 1)"])
        #expect(theirs.watchdogInterval == nil)

        for usec in ["", "0", "-5", "abc", "1.5"] {
            let bad = SystemdNotifier(environment: ["WATCHDOG_USEC": usec])
            #expect(bad.watchdogInterval == nil, "WATCHDOG_USEC=\(usec)")
        }
        let badPID = SystemdNotifier(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "x"])
        #expect(badPID.watchdogInterval == nil)
    }

    @Test func watchdogServicePetsWhileHealthyAndStopsOnCancellation() async throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])
        let service = WatchdogService(
            notifier: notifier, interval: .milliseconds(20), logger: quietLogger)
        let running = Task { try await service.run() }

        #expect(try await socket.receive() == Array("WATCHDOG=1".utf8))
        #expect(try await socket.receive() == Array("WATCHDOG=1".utf8))
        running.cancel()
        try await running.value  // returns, not throws, on cancellation
    }

    @Test func watchdogServiceDoesNotPetWhenUnhealthy() async throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.address])
        let service = WatchdogService(
            notifier: notifier, interval: .milliseconds(10), logger: quietLogger,
            isHealthy: { false })
        let running = Task { try await service.run() }

        #expect(try await socket.receive(timeout: .milliseconds(200)) == nil)
        running.cancel()
        try await running.value
    }

    @Test func watchdogServiceWithoutWatchdogWaitsForShutdown() async throws {
        let service = WatchdogService(
            notifier: SystemdNotifier(environment: [:]), logger: quietLogger)
        let running = Task { try await service.run() }
        try await Task.sleep(for: .milliseconds(50))
        running.cancel()
        try await running.value
    }
}
