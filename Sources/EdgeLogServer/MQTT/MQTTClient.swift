#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMosquitto
import EdgeLogStorage
import Logging

/// One connection to an MQTT broker through libmosquitto 2.0, with a persistent session and
/// QoS 1 subscriptions, that hands every message to a handler which decides whether the broker
/// gets its PUBACK.
///
/// ## Protocol and session
/// MQTT v5 always (mosquitto 1.6 and later): shared subscriptions need it, and one code path is
/// simpler than two. The session is persistent: clean start off (`mosquitto_new(id, false, …)`)
/// and a Session Expiry Interval of 0xFFFFFFFF ("never"), which is what clean session off means
/// in v3.1.1. Without that property a v5 session ends with the network connection: checked
/// with mosquitto 2.0.11, a v5 client reconnecting with clean start off but no expiry gets
/// session-present 0 and none of the QoS 1 messages published while it was away.
/// libmosquitto has no asynchronous connect that takes CONNECT properties; they are stored
/// by `mosquitto_connect_bind_v5`, which copies them before it validates its arguments, so a
/// call with port -1 stores them and fails at once with MOSQ_ERR_INVAL, and every later
/// `mosquitto_connect_bind_async`/`mosquitto_reconnect_async` sends them (libmosquitto 2.0.11
/// lib/connect.c; checked: the session survives a reconnect and a broker restart).
///
/// Every filter is subscribed at QoS 1 on every connect (a broker that lost the session, say
/// restarted without persistence, gets the subscriptions back), with a subscription
/// identifier (its index in `Configuration.subscriptions` + 1, see `Message.isDelivered`) and
/// retain handling 1, "retained messages only for a new subscription", so resubscribing after
/// a reconnect does not replay every retained message into the log.
///
/// ## The network thread
/// Each client runs its own thread that calls `mosquitto_loop` (with `mosquitto_threaded_set`
/// on), and reconnects with exponential backoff (`reconnectDelayMinMs` doubling up to
/// `reconnectDelayMaxMs`, reset by a successful CONNACK), instead of `mosquitto_loop_start`
/// and `mosquitto_reconnect_delay_set`. Observed with libmosquitto 2.0.11: when the first
/// connection attempt fails — the broker is not up yet, the normal case at boot — the
/// threaded loop never tries again (`mosquitto_connect_async` then `mosquitto_loop_start`,
/// broker started 5 s later: no connection in 12 s; upstream issues eclipse/mosquitto#1903 and
/// #3258, the latter also for TLS errors, after which its thread exits). Its reconnect delay
/// is a plain sleep, so `mosquitto_loop_stop` waits out up to the whole maximum delay. Here
/// the delay is a wait on a condition that `stop()` signals, and every error — a TLS
/// handshake that fails (MOSQ_ERR_TLS), or the EPROTO that a refusal's `shutdown(2)` causes
/// on a TLS connection, both of which end libmosquitto's own loop — just means reconnecting
/// later (`MQTTClientTests` cover both with a TLS broker).
///
/// ## When the PUBACK goes out
/// libmosquitto calls `on_message` for a QoS 1 message from inside its read of the PUBLISH, on
/// the network thread; in threaded mode the PUBACK is only queued and written by a later
/// iteration of the loop, after the callback has returned. So the handler can wait for the
/// commit (`ack = durable`): the broker has no PUBACK until then, and a crash in between
/// means redelivery.
///
/// A handler that cannot store a message returns `.refuse`. The client then shuts the socket
/// down (`shutdown(2)`, both directions) from inside the callback, before libmosquitto can
/// write the PUBACK: the loop sees the connection end, reconnects after the backoff (longer
/// with every consecutive refusal: 1, 2, 4 … 30 s, so a full disk does not make it spin), and
/// the broker redelivers the message (DUP set) to the persistent session; `reconnect`
/// discards the stale queued PUBACK. Every further message read on that connection (TLS may
/// have more decrypted ones buffered) is refused the same way.
///
/// Observed with libmosquitto and mosquitto 2.0.11 (C subscriber, strace on its socket, broker
/// log): `mosquitto_disconnect()` inside `on_message` does NOT keep the PUBACK back: the loop
/// writes the queued PUBACK (`40 02 00 03`) and then the DISCONNECT (`e0 00`), the broker logs
/// "Received PUBACK" and never redelivers. (Only when another PUBLISH was already buffered
/// did the connection die before the PUBACK was written, so it looks as if it works in a busy
/// test.) It also stops libmosquitto's own reconnecting, since the client then counts as
/// disconnected on purpose. With `shutdown(SHUT_RDWR)` inside the callback, nothing more was
/// written on that socket; the client reconnected 1 s later with session-present 1 and the
/// broker resent the message with DUP=1. `MQTTClientTests` repeat this against the broker.
///
/// ## Thread rules
/// - `init` configures the libmosquitto handle before any other thread can see it.
/// - After `start()`, the handle and all the state marked "network thread" are used only on
///   the network thread: the loop, every libmosquitto callback, the message and event
///   handlers, and the clean stop run there, one at a time. The handlers may block (that is
///   how `ack = durable` works) but must not call back into the client.
/// - `start()` and `stop()` may be called from any thread or task; they only touch the state
///   under `control`. `stop()` suspends until the network thread has finished its current
///   message, written the PUBACKs it has queued and a DISCONNECT, and destroyed the handle.
/// - The userdata given to libmosquitto is an unretained pointer to the client; the network
///   thread holds a strong reference for as long as it runs, and callbacks only happen inside
///   libmosquitto calls made on that thread.
final class MQTTClient: @unchecked Sendable {
    struct Configuration: Sendable, Equatable {
        var host: String
        var port: Int
        var clientId: String
        var username: String? = nil
        var password: String? = nil
        /// TLS is on when a CA file is given; certificate and key for client authentication.
        var tlsCAFile: String? = nil
        var tlsCertFile: String? = nil
        var tlsKeyFile: String? = nil
        var keepaliveSeconds = 30
        /// Filters subscribed at QoS 1 on every connect; subscription identifier = index + 1.
        var subscriptions: [String] = []
        var reconnectDelayMinMs = 1_000
        var reconnectDelayMaxMs = 30_000
        /// How long one `mosquitto_loop` call waits on the socket: bounds how late a stop
        /// request is noticed when the connection is idle.
        var pollIntervalMs: Int32 = 250
    }

    /// A message as libmosquitto delivers it. `payload` points into libmosquitto's buffer and
    /// is only valid during the handler call: copy what you keep.
    struct Message {
        let topic: String
        let payload: UnsafeRawBufferPointer
        let qos: Int32
        let retain: Bool
        fileprivate let properties: OpaquePointer?

        fileprivate init(topic: String, payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool, properties: OpaquePointer?) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
            self.properties = properties
        }

        /// A message that names no subscription.
        init(topic: String, payload: UnsafeRawBufferPointer, qos: Int32, retain: Bool) {
            self.init(topic: topic, payload: payload, qos: qos, retain: retain, properties: nil)
        }

        /// Whether this copy was delivered for subscription `identifier`; true as well when it
        /// names no subscription at all (a broker without subscription identifiers). With
        /// overlapping subscriptions an MQTT v5 broker may send one copy per matching
        /// subscription, each naming its own (mosquitto 2.0.11 does; a v3.1.1 client gets one).
        func isDelivered(forSubscription identifier: Int) -> Bool {
            var value: UInt32 = 0
            var cursor = mosquitto_property_read_varint(properties, MQTTClient.propertySubscriptionIdentifier, &value, false)
            if cursor == nil { return true }
            while cursor != nil {
                if Int(value) == identifier { return true }
                cursor = mosquitto_property_read_varint(cursor, MQTTClient.propertySubscriptionIdentifier, &value, true)
            }
            return false
        }
    }

    /// What the handler decided about a message.
    enum Disposition: Sendable {
        /// Let libmosquitto send the PUBACK (QoS 1) once the handler has returned.
        case acknowledge
        /// Never acknowledge it on this connection: the client drops the connection and the
        /// broker redelivers the message to the persistent session after the reconnect.
        case refuse
    }

    enum Event: Sendable, Equatable {
        /// CONNACK with success.
        case connected(sessionPresent: Bool)
        /// The broker has answered every SUBSCRIBE of this connection.
        case subscribed
        case disconnected
    }

    let configuration: Configuration
    private let logger: Logger
    private let onMessage: @Sendable (Message) -> Disposition
    private let onEvent: @Sendable (Event) -> Void

    // Network thread (and `init` before `start`).
    private var handle: OpaquePointer? = nil
    private var isConnected = false
    /// The current connection has refused a message: refuse everything else it delivers.
    private var isRefusing = false
    private var connectFailures = 0
    private var consecutiveRefusals = 0
    private var pendingSubscriptions: [Int32: String] = [:]
    /// A connection was up since the last failure was logged.
    private var wasConnected = false
    private var lastDisconnectReason: Int32? = nil

    // Under `control`.
    private let control = BlockingCondition()
    private var isStarted = false
    private var isStopRequested = false
    private var isFinished = false
    private var finishWaiters: [CheckedContinuation<Void, Never>] = []

    // mqtt_protocol.h, which the CMosquitto shim does not include.
    fileprivate static let propertySubscriptionIdentifier: Int32 = 11  // MQTT_PROP_SUBSCRIPTION_IDENTIFIER
    private static let propertySessionExpiryInterval: Int32 = 17  // MQTT_PROP_SESSION_EXPIRY_INTERVAL
    private static let subscribeOptionSendRetainNew: Int32 = 0x10  // MQTT_SUB_OPT_SEND_RETAIN_NEW
    private static let success = Int32(truncatingIfNeeded: MOSQ_ERR_SUCCESS.rawValue)
    private static let errnoError = Int32(truncatingIfNeeded: MOSQ_ERR_ERRNO.rawValue)

    /// `mosquitto_lib_init`, once per process.
    private static let libraryInitialized: Bool = {
        mosquitto_lib_init() == success
    }()

    init(
        configuration: Configuration, logger: Logger,
        onMessage: @escaping @Sendable (Message) -> Disposition,
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) throws(MQTTClientError) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "edgelog.mqtt.client_id"] = "\(configuration.clientId)"
        self.logger = logger
        self.onMessage = onMessage
        self.onEvent = onEvent
        guard Self.libraryInitialized else { throw MQTTClientError("mosquitto_lib_init failed") }
        guard let handle = mosquitto_new(configuration.clientId, false, nil) else {
            throw MQTTClientError("mosquitto_new failed: \(String(cString: strerror(errno)))")
        }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        try Self.check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "setting MQTT v5")
        try Self.check(mosquitto_threaded_set(handle, true), "setting threaded mode")
        if let username = configuration.username {
            try Self.check(mosquitto_username_pw_set(handle, username, configuration.password), "setting the user name")
        }
        if configuration.tlsCAFile != nil || configuration.tlsCertFile != nil || configuration.tlsKeyFile != nil {
            // Checks that the files can be opened; the handshake happens on connect.
            try Self.check(
                mosquitto_tls_set(
                    handle, configuration.tlsCAFile, nil, configuration.tlsCertFile, configuration.tlsKeyFile, nil),
                "setting up TLS (CA \(configuration.tlsCAFile ?? "-"), certificate \(configuration.tlsCertFile ?? "-"), key \(configuration.tlsKeyFile ?? "-"))"
            )
        }
        var properties: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&properties) }
        try Self.check(
            mosquitto_property_add_int32(&properties, Self.propertySessionExpiryInterval, UInt32.max), "building CONNECT properties")
        // Port -1: stores the properties, then fails with MOSQ_ERR_INVAL before connecting.
        let stored = mosquitto_connect_bind_v5(handle, configuration.host, -1, Int32(configuration.keepaliveSeconds), nil, properties)
        guard stored == Int32(truncatingIfNeeded: MOSQ_ERR_INVAL.rawValue) else {
            throw MQTTClientError("storing the CONNECT properties: unexpected \(Self.describe(stored))")
        }
        mosquitto_connect_v5_callback_set(handle) { _, userdata, reasonCode, flags, _ in
            MQTTClient.from(userdata).didConnect(reasonCode: reasonCode, flags: flags)
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, reasonCode, _ in
            MQTTClient.from(userdata).didDisconnect(reasonCode: reasonCode)
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            MQTTClient.from(userdata).didSubscribe(mid: mid, count: count, granted: granted)
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
            MQTTClient.from(userdata).didReceive(message, properties: properties)
        }
    }

    deinit {
        // Only when never started: the network thread destroys the handle when it ends.
        if let handle { mosquitto_destroy(handle) }
    }

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MQTTClient {
        Unmanaged<MQTTClient>.fromOpaque(userdata!).takeUnretainedValue()
    }

    // MARK: Starting and stopping

    /// Starts the network thread, which connects (and keeps reconnecting) until `stop()`.
    func start() {
        let shouldStart = control.withLock {
            guard !isStarted, !isStopRequested else { return false }
            isStarted = true
            return true
        }
        guard shouldStart else { return }
        let retained = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let client = Unmanaged<MQTTClient>.fromOpaque(raw!).takeRetainedValue()
                client.runNetworkThread()
                return nil
            }, retained)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    /// Stops taking messages, lets the one being handled finish, writes the queued PUBACKs and
    /// a DISCONNECT, and destroys the libmosquitto handle. Returns when all that is done.
    func stop() async {
        let wasStarted = control.withLock {
            isStopRequested = true
            control.broadcast()
            return isStarted
        }
        guard wasStarted else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = control.withLock {
                if isFinished { return true }
                finishWaiters.append(continuation)
                return false
            }
            if finished { continuation.resume() }
        }
    }

    private var stopRequested: Bool { control.withLock { isStopRequested } }

    // MARK: Network thread

    private func runNetworkThread() {
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
            var rc = mosquitto_loop(handle, configuration.pollIntervalMs, 1)
            // mosquitto_loop reads before it writes, so the PUBACK queued by a message handled
            // in this call would wait until after the next message's handler (a whole commit
            // later, with ack = durable). Write it now.
            if rc == Self.success && mosquitto_want_write(handle) {
                rc = mosquitto_loop_write(handle, 1)
            }
            if rc != Self.success {
                // libmosquitto has closed the socket (and called on_disconnect if it was up).
                if isConnected { didDisconnect(reasonCode: rc) }
                logConnectionFailure(lastDisconnectReason.map(Self.describe) ?? Self.describe(rc))
                needsConnect = true
                waitBeforeReconnecting()
            }
        }
        stopCleanly()
        mosquitto_destroy(handle)
        handle = nil
        let waiters = control.withLock {
            isFinished = true
            let waiters = finishWaiters
            finishWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Logs the end of a connection, or the first failed attempt of a series at info and the
    /// following ones at debug, so a broker that stays away does not flood the log.
    private func logConnectionFailure(_ reason: String) {
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
            while !isStopRequested {
                let now = BlockingCondition.nowNanos()
                guard now < deadline else { break }
                control.wait(timeoutNanos: deadline - now)
            }
        }
    }

    /// Writes the PUBACKs already queued for handled messages, then a DISCONNECT, without
    /// reading (so without taking) another message; gives up after 2 s.
    private func stopCleanly() {
        guard mosquitto_socket(handle) >= 0 else { return }
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

    // MARK: Callbacks (network thread)

    private func didConnect(reasonCode: Int32, flags: Int32) {
        guard reasonCode == 0 else {
            logger.info(
                "the MQTT broker refused the connection",
                metadata: ["edgelog.mqtt.reason": "\(String(cString: mosquitto_reason_string(reasonCode))) (\(reasonCode))"])
            return
        }
        let sessionPresent = flags & 1 == 1
        isConnected = true
        wasConnected = true
        isRefusing = false
        connectFailures = 0
        logger.info(
            "connected to the MQTT broker",
            metadata: [
                "edgelog.mqtt.broker": "\(configuration.host):\(configuration.port)",
                "edgelog.mqtt.session_present": "\(sessionPresent)",
            ])
        onEvent(.connected(sessionPresent: sessionPresent))
        pendingSubscriptions = [:]
        for (index, filter) in configuration.subscriptions.enumerated() {
            var properties: OpaquePointer? = nil
            defer { mosquitto_property_free_all(&properties) }
            var mid: Int32 = 0
            var rc = mosquitto_property_add_varint(&properties, Self.propertySubscriptionIdentifier, UInt32(index + 1))
            if rc == Self.success {
                rc = mosquitto_subscribe_v5(handle, &mid, filter, 1, Self.subscribeOptionSendRetainNew, properties)
            }
            if rc == Self.success {
                pendingSubscriptions[mid] = filter
            } else {
                logger.info(
                    "cannot subscribe", metadata: ["edgelog.mqtt.filter": "\(filter)", "edgelog.mqtt.error": "\(Self.describe(rc))"])
            }
        }
        if configuration.subscriptions.isEmpty { onEvent(.subscribed) }
    }

    private func didSubscribe(mid: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
        guard let filter = pendingSubscriptions.removeValue(forKey: mid) else { return }
        for index in 0..<Int(count) {
            let code = granted?[index] ?? 0x80
            if code >= 0x80 {
                logger.info(
                    "the MQTT broker refused a subscription",
                    metadata: [
                        "edgelog.mqtt.filter": "\(filter)",
                        "edgelog.mqtt.reason": "\(String(cString: mosquitto_reason_string(code))) (\(code))",
                    ])
            } else if code < 1 {
                logger.info("the MQTT broker granted only QoS 0", metadata: ["edgelog.mqtt.filter": "\(filter)"])
            }
        }
        if pendingSubscriptions.isEmpty {
            logger.debug("subscribed", metadata: ["edgelog.mqtt.filters": "\(configuration.subscriptions)"])
            onEvent(.subscribed)
        }
    }

    private func didDisconnect(reasonCode: Int32) {
        guard isConnected else { return }
        isConnected = false
        pendingSubscriptions = [:]
        lastDisconnectReason = reasonCode
        onEvent(.disconnected)
    }

    private func didReceive(_ pointer: UnsafePointer<mosquitto_message>?, properties: OpaquePointer?) {
        guard let raw = pointer?.pointee else { return }
        guard !isRefusing else {
            dropConnection()
            return
        }
        let payload =
            raw.payload.map { UnsafeRawBufferPointer(start: $0, count: Int(raw.payloadlen)) }
            ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let message = Message(
            topic: String(cString: raw.topic), payload: payload, qos: raw.qos, retain: raw.retain,
            properties: properties)
        switch onMessage(message) {
        case .acknowledge:
            consecutiveRefusals = 0
        case .refuse:
            consecutiveRefusals += 1
            isRefusing = true
            dropConnection()
        }
    }

    /// Ends the connection from inside `on_message` so that the queued PUBACK is never
    /// written (see the type's documentation for why not `mosquitto_disconnect`).
    private func dropConnection() {
        let fd = mosquitto_socket(handle)
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }

    // MARK: Errors

    private static func check(_ rc: Int32, _ what: String) throws(MQTTClientError) {
        guard rc == success else { throw MQTTClientError("\(what): \(describe(rc))") }
    }

    /// A libmosquitto result code (or, from 128 on, an MQTT v5 reason code) as text.
    static func describe(_ rc: Int32) -> String {
        if rc >= 128 { return "\(String(cString: mosquitto_reason_string(rc))) (reason \(rc))" }
        if rc == errnoError { return "\(String(cString: strerror(errno))) (errno \(errno))" }
        return "\(String(cString: mosquitto_strerror(rc))) (rc \(rc))"
    }
}

/// A client that cannot be set up (bad TLS files, out of memory); connection problems are
/// not errors, the client keeps retrying them.
struct MQTTClientError: Error, Sendable, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
