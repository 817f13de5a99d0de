#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMosquitto
import EdgeLogStorage
import Logging
import EdgeLogCore

/// The network thread: connecting, the read-commit-acknowledge turns, keepalive while a
/// commit is pending, reconnecting with backoff, and the clean stop. See `MQTTClient`.
extension MQTTClient {
    func runNetworkThread() {
        var needsConnect = true
        var isFirstAttempt = true
        while !stopRequested {
            if needsConnect {
                let rc =
                    isFirstAttempt
                    ? mosquitto_connect_bind_async(
                        handle, configuration.host, Int32(configuration.port), Int32(configuration.keepaliveSeconds), nil)
                    : mosquitto_reconnect_async(handle)
                isFirstAttempt = false
                guard rc == Self.success else {
                    logConnectionFailure(Self.describe(rc))
                    waitBeforeReconnecting()
                    continue
                }
                needsConnect = false
            }
            var rc: Int32
            if isConnected {
                rc = runTurn()
            } else {
                // Connecting: the TCP connect, the TLS handshake and the CONNACK, as
                // libmosquitto's own loop does them. Write the CONNECT or SUBSCRIBEs at once.
                rc = mosquitto_loop(handle, configuration.pollIntervalMs, 1)
                if rc == Self.success && mosquitto_want_write(handle) {
                    rc = mosquitto_loop_write(handle, 1)
                }
            }
            if rc != Self.success {
                // The connection is over (libmosquitto closed the socket, or the next reconnect
                // does, discarding the queued packets first).
                discardGroup()
                if isConnected { didDisconnect(reasonCode: rc) }
                logConnectionFailure(lastDisconnectReason.map(Self.describe) ?? Self.describe(rc))
                needsConnect = true
                waitBeforeReconnecting()
            }
        }
        stopCleanly()
        mosquitto_destroy(handle)
        handle = nil
        didFinish()
    }

    /// One turn on an established connection: write what is queued, or read a group, commit
    /// it and acknowledge it; then libmosquitto's keepalive.
    private func runTurn() -> Int32 {
        let fd = mosquitto_socket(handle)
        guard fd >= 0 else { return Self.noConnection }
        if mosquitto_want_write(handle) {
            // The last turn's packets did not all fit into the socket: no new group (and so no
            // new PUBACKs behind them) until they are written.
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, configuration.pollIntervalMs)
            if ready < 0 && errno != EINTR { return Self.errnoError }
            if ready > 0 {
                let rc = mosquitto_loop_write(handle, 1)
                guard rc == Self.success else { return rc }
            }
            return mosquitto_loop_misc(handle)
        }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, configuration.pollIntervalMs)
        if ready < 0 && errno != EINTR { return Self.errnoError }
        if ready > 0 {
            var rc = readAndCommitGroup(fd: fd)
            // The group's PUBACKs first: a keepalive check after a long commit may close the
            // connection (a PINGRESP still unread), which would throw them away.
            if rc == Self.success && mosquitto_want_write(handle) { rc = mosquitto_loop_write(handle, 1) }
            guard rc == Self.success else { return rc }
        }
        // Keepalive: may queue a PINGREQ, or find the broker silent and close.
        var rc = mosquitto_loop_misc(handle)
        if rc == Self.success && mosquitto_want_write(handle) {
            rc = mosquitto_loop_write(handle, 1)
        }
        return rc
    }

    /// Reads every packet the socket holds (a whole group: up to `receiveMaximum` messages or
    /// `groupBytesMax` payload bytes), then commits the messages accepted.
    private func readAndCommitGroup(fd: Int32) -> Int32 {
        isReadingGroup = true
        var rc = Self.success
        while true {
            rc = mosquitto_loop_read(handle, 1)
            guard rc == Self.success, !isRefusing else { break }
            if groupMessages >= configuration.receiveMaximum || groupBytes >= configuration.groupBytesMax { break }
            // More bytes on the socket, or decrypted ones inside OpenSSL that poll cannot see.
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 || hasPendingTLSBytes() else { break }
        }
        isReadingGroup = false
        guard rc == Self.success else { return rc }
        finishGroup()
        return Self.success
    }

    /// Commits the group read so far and waits for the commit; refuses the group if the
    /// commit failed.
    func finishGroup() {
        guard groupMessages > 0 else { return }
        groupMessages = 0
        groupBytes = 0
        // Nothing to commit (unrouted messages, the broker's counters): no verdict on the
        // refusal streak either.
        guard let commit = onGroupEnd(.commit) else { return }
        switch awaitCommit(commit) {
        case .acknowledge:
            consecutiveRefusals = 0
        case .refuse:
            consecutiveRefusals += 1
            isRefusing = true
            dropConnection()
        }
    }

    /// A message of the group was refused: the whole group is, and the connection ends.
    func refuseGroup() {
        consecutiveRefusals += 1
        isRefusing = true
        dropConnection()
        discardGroup()
    }

    /// Tells the handler to forget the group read so far (its connection is gone).
    func discardGroup() {
        guard groupMessages > 0 else { return }
        groupMessages = 0
        groupBytes = 0
        _ = onGroupEnd(.discard)
    }

    /// Waits for `commit`; a PINGREQ after the first second and then every half keepalive,
    /// so the broker keeps the connection while the disk is slow.
    private func awaitCommit(_ commit: MQTTGroupCommit) -> Disposition {
        let pingIntervalNanos = UInt64(max(1, configuration.keepaliveSeconds / 2)) * 1_000_000_000
        var nextPing = BlockingCondition.nowNanos() + 1_000_000_000
        while true {
            if let disposition = commit.wait(untilNanos: nextPing) { return disposition }
            sendPingRequest()
            nextPing = BlockingCondition.nowNanos() + pingIntervalNanos
        }
    }

    /// OpenSSL's functions, from the libssl that libmosquitto loaded (looked up rather than
    /// linked, so building needs no libssl-dev); nil without TLS support.
    private struct OpenSSL {
        typealias Write = @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?, Int32) -> Int32
        typealias Pending = @convention(c) (UnsafeMutableRawPointer?) -> Int32
        typealias ClearErrors = @convention(c) () -> Void
        let write: Write
        let pending: Pending
        let clearErrors: ClearErrors

        static let loaded: OpenSSL? = {
            guard let process = dlopen(nil, RTLD_NOW), let write = dlsym(process, "SSL_write"),
                let pending = dlsym(process, "SSL_pending"), let clear = dlsym(process, "ERR_clear_error")
            else { return nil }
            return OpenSSL(
                write: unsafeBitCast(write, to: Write.self), pending: unsafeBitCast(pending, to: Pending.self),
                clearErrors: unsafeBitCast(clear, to: ClearErrors.self))
        }()
    }

    /// Whether OpenSSL holds decrypted bytes of this connection not read yet.
    private func hasPendingTLSBytes() -> Bool {
        guard let ssl = mosquitto_ssl_get(handle), let openSSL = OpenSSL.loaded else { return false }
        return openSSL.pending(ssl) > 0
    }

    /// Writes an MQTT PINGREQ (`c0 00`) straight to the connection, ahead of the group's
    /// queued PUBACKs. Safe because a group is only read with an empty outgoing queue, so no
    /// packet is half-written. Only when the socket has room now: a ping that cannot be
    /// written whole at once would leave a half packet in the stream (or, with TLS, a write
    /// OpenSSL insists be retried with the same bytes before libmosquitto's next one), so
    /// then the connection is dropped and the broker delivers the group again.
    private func sendPingRequest() {
        let fd = mosquitto_socket(handle)
        guard fd >= 0 else { return }
        var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&descriptor, 1, 0) > 0, descriptor.revents & Int16(POLLOUT) != 0 else {
            logger.debug("no room for a PINGREQ while a commit is pending; trying again later")
            return
        }
        let ping: [UInt8] = [0xC0, 0x00]
        let written: Int
        if let ssl = mosquitto_ssl_get(handle) {
            guard let openSSL = OpenSSL.loaded else {
                logger.info("cannot keep a TLS connection alive during a long commit: SSL_write not found")
                return
            }
            openSSL.clearErrors()
            written = ping.withUnsafeBytes { Int(openSSL.write(ssl, $0.baseAddress, 2)) }
            openSSL.clearErrors()
        } else {
            written = ping.withUnsafeBytes { send(fd, $0.baseAddress, 2, Int32(MSG_NOSIGNAL)) }
        }
        if written == 2 {
            logger.debug("PINGREQ sent while a commit is pending")
        } else {
            logger.info("could not write a keepalive PINGREQ whole; reconnecting", metadata: ["edgelog.written": "\(written)"])
            dropConnection()
        }
    }

    /// Logs the end of a connection, or the first failed attempt of a series at info and the
    /// following ones at debug, so a broker that stays away does not flood the log.
    private func logConnectionFailure(_ reason: String) {
        onEvent(.connectFailed(reason))
        let metadata: Logger.Metadata = [
            "edgelog.mqtt.broker": "\(configuration.host):\(configuration.port)",
            "edgelog.mqtt.reason": "\(reason)",
        ]
        if wasConnected {
            logger.info("lost the connection to the MQTT broker; reconnecting", metadata: metadata)
        } else if connectFailures == 0 {
            logger.info("cannot connect to the MQTT broker; retrying with backoff", metadata: metadata)
        } else {
            logger.debug("cannot connect to the MQTT broker", metadata: metadata)
        }
        wasConnected = false
        lastDisconnectReason = nil
        connectFailures += 1
    }

    /// Waits the backoff delay, or less if `stop()` is called.
    private func waitBeforeReconnecting() {
        let attempt = max(connectFailures, consecutiveRefusals, 1)
        let factor = 1 << min(attempt - 1, 20)
        let delayMs = min(configuration.reconnectDelayMaxMs, configuration.reconnectDelayMinMs * factor)
        let deadline = BlockingCondition.nowNanos() + UInt64(delayMs) * 1_000_000
        control.withLock {
            while !stopRequestedLocked {
                let now = BlockingCondition.nowNanos()
                guard now < deadline else { break }
                control.wait(timeoutNanos: deadline - now)
            }
        }
    }

    /// Writes the PUBACKs already queued for committed groups, then a DISCONNECT, without
    /// reading (so without taking) another message; gives up after 2 s.
    private func stopCleanly() {
        // Not connected (say, inside a TLS handshake): nothing is queued worth writing.
        guard isConnected, mosquitto_socket(handle) >= 0 else {
            if mosquitto_socket(handle) >= 0 { _ = mosquitto_disconnect(handle) }
            return
        }
        if mosquitto_disconnect(handle) == Self.success {
            let deadline = BlockingCondition.nowNanos() + 2_000_000_000
            while case let fd = mosquitto_socket(handle), fd >= 0, BlockingCondition.nowNanos() < deadline {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 100)
                guard mosquitto_loop_write(handle, 1) == Self.success else { break }
            }
        }
        if isConnected { didDisconnect(reasonCode: 0) }
    }
}
