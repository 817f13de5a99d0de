#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMosquitto
import EdgeLogStorage
import Logging
import EdgeLogCore

/// One connection to an MQTT broker through libmosquitto 2.0, with a persistent session and
/// QoS 1 subscriptions, that hands every message to a handler and lets the broker have the
/// PUBACKs only once the handler's commit of their group is done.
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
/// The CONNECT carries a Receive Maximum (`receiveMaximum`, libmosquitto's default is 20):
/// how many QoS 1 messages the broker may have sent us and not yet seen acknowledged. A
/// mosquitto 2.0 broker takes it as its window for a v5 client (src/property_broker.c: it
/// replaces `max_inflight_messages`, which then only bounds v3.1.1 clients), so it is the
/// largest group one commit can acknowledge.
///
/// Every filter is subscribed at QoS 1 on every connect (a broker that lost the session, say
/// restarted without persistence, gets the subscriptions back), with a subscription
/// identifier (its index in `Configuration.subscriptions` + 1, see `Message.isDelivered`) and
/// retain handling 1, "retained messages only for a new subscription", so resubscribing after
/// a reconnect does not replay every retained message into the log. `systemTopics` (the
/// broker's `$SYS` counters) are subscribed at QoS 0 without an identifier.
///
/// ## Groups and PUBACKs
/// libmosquitto 2.0 queues the PUBACK of a QoS 1 message before it calls `on_message`; in
/// threaded mode a queued packet is written only when the client's loop writes (lib/
/// packet_mosq.c `packet__queue`), and every write empties the whole queue. So the network
/// thread decides when the broker hears of a message, and does not use `mosquitto_loop`
/// (which writes whenever something is queued) once connected. Instead, each turn of its own
/// loop (`MQTTClient+NetworkThread.swift`):
/// 1. polls the socket; when readable, reads every PUBLISH the socket holds (up to
///    `receiveMaximum` messages or `groupBytesMax` bytes), each handed to `onMessage`, which
///    accepts it into the current group;
/// 2. calls `onGroupEnd(.commit)`, which starts the group's commit and returns it, and waits
///    for it — sending MQTT PINGREQs itself meanwhile, so a slow disk does not cost the
///    connection its keepalive;
/// 3. writes the queued PUBACKs (`mosquitto_loop_write`) only after a successful commit, then
///    runs libmosquitto's keepalive (`mosquitto_loop_misc`).
/// A turn starts to read only when the previous turn's packets are all written, so during a
/// commit the outgoing queue holds whole, unwritten PUBACKs and nothing else, and a PINGREQ
/// can go ahead of them on the socket (or, with TLS, through `SSL_write`).
///
/// Before the CONNACK (and for the TLS handshake) the thread runs `mosquitto_loop` as
/// libmosquitto intends; a message that arrives in such a call is committed inside
/// `on_message` before the call can write its PUBACK.
///
/// A group that cannot be stored is refused: the client shuts the socket down (`shutdown(2)`,
/// both directions) so none of the group's PUBACKs is written, reconnects after the backoff
/// (longer with every consecutive refusal: 1, 2, 4 … 30 s, so a full disk does not make it
/// spin), and the broker redelivers the messages (DUP set) to the persistent session;
/// `reconnect` discards the stale queued PUBACKs. A handler may also refuse a single message
/// (`onMessage` returns `.refuse`); then its whole group is refused the same way.
///
/// Observed with libmosquitto and mosquitto 2.0.11 (C subscriber, strace on its socket, broker
/// log): `mosquitto_disconnect()` inside `on_message` does NOT keep the PUBACK back: the loop
/// writes the queued PUBACK (`40 02 00 03`) and then the DISCONNECT (`e0 00`), the broker logs
/// "Received PUBACK" and never redelivers. With `shutdown(SHUT_RDWR)`, nothing more was
/// written on that socket; the client reconnected 1 s later with session-present 1 and the
/// broker resent the message with DUP=1. `MQTTClientTests` repeat this against the broker.
///
/// ## Reconnecting
/// The thread reconnects with exponential backoff (`reconnectDelayMinMs` doubling up to
/// `reconnectDelayMaxMs`, reset by a successful CONNACK), instead of `mosquitto_loop_start`
/// and `mosquitto_reconnect_delay_set`. Observed with libmosquitto 2.0.11: when the first
/// connection attempt fails — the broker is not up yet, the normal case at boot — the
/// threaded loop never tries again (upstream issues eclipse/mosquitto#1903 and #3258, the
/// latter also for TLS errors, after which its thread exits). Its reconnect delay is a plain
/// sleep, so `mosquitto_loop_stop` waits out up to the whole maximum delay. Here the delay
/// is a wait on a condition that `stop()` signals, and every error — a failed TLS handshake,
/// or the EPROTO that a refusal's `shutdown(2)` causes on a TLS connection — just means
/// reconnecting later (`MQTTClientTests` cover both with a TLS broker).
///
/// ## Thread rules
/// - `init` configures the libmosquitto handle before any other thread can see it.
/// - After `start()`, the handle and all the state marked "network thread" are used only on
///   the network thread: the loop, every libmosquitto callback, `onMessage`, `onGroupEnd`,
///   `onEvent`, and the clean stop run there, one at a time. The handlers must not call back
///   into the client; `onGroupEnd`'s commit is finished on another thread or task.
/// - `start()` and `stop()` may be called from any thread or task; they only touch the state
///   under `control`. `stop()` suspends until the network thread has finished the group it is
///   committing, written the PUBACKs it has queued and a DISCONNECT, and destroyed the handle.
/// - The userdata given to libmosquitto is an unretained pointer to the client; the network
///   thread holds a strong reference for as long as it runs, and callbacks only happen inside
///   libmosquitto calls made on that thread.
package final class MQTTClient: @unchecked Sendable {
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
        /// Topics subscribed at QoS 0 without an identifier (the broker's `$SYS` counters).
        var systemTopics: [String] = []
        /// MQTT v5 Receive Maximum: the broker's window of unacknowledged QoS 1 messages, and
        /// so the largest group.
        var receiveMaximum = 1_000
        /// A read burst ends once its messages' payloads reach this many bytes.
        var groupBytesMax = 16 * 1024 * 1024
        var reconnectDelayMinMs = 1_000
        var reconnectDelayMaxMs = 30_000
        /// How long one poll of the socket waits: bounds how late a stop request is noticed
        /// when the connection is idle.
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

    /// What the handler decided about a message or a group.
    enum Disposition: Sendable, Equatable {
        /// Let the PUBACK (QoS 1) go out once the group is committed.
        case acknowledge
        /// Never acknowledge it on this connection: the client drops the connection and the
        /// broker redelivers the message (and the rest of its group) after the reconnect.
        case refuse
    }

    /// What `onGroupEnd` is asked to do with the messages it accepted since the last call.
    enum GroupEnd: Sendable, Equatable {
        /// Start committing them; the client waits for the commit before their PUBACKs.
        case commit
        /// Forget them: the connection is gone and the broker will send them again.
        case discard
    }

    enum Event: Sendable, Equatable {
        /// CONNACK with success.
        case connected(sessionPresent: Bool)
        /// The broker has answered every SUBSCRIBE of this connection.
        case subscribed
        case disconnected
        /// A connection attempt failed, or the connection ended: why.
        case connectFailed(String)
    }

    let configuration: Configuration
    let logger: Logger
    let onMessage: @Sendable (Message) -> Disposition
    let onGroupEnd: @Sendable (GroupEnd) -> MQTTGroupCommit?
    let onEvent: @Sendable (Event) -> Void

    // Network thread (and `init` before `start`).
    var handle: OpaquePointer? = nil
    var isConnected = false
    /// The current connection has refused a message: refuse everything else it delivers.
    var isRefusing = false
    /// The thread is inside its own read burst (not inside `mosquitto_loop`).
    var isReadingGroup = false
    /// Messages and payload bytes accepted into the group being read.
    var groupMessages = 0
    var groupBytes = 0
    var connectFailures = 0
    var consecutiveRefusals = 0
    var pendingSubscriptions: [Int32: String] = [:]
    /// A connection was up since the last failure was logged.
    var wasConnected = false
    var lastDisconnectReason: Int32? = nil

    // Under `control`.
    let control = BlockingCondition()
    private var isStarted = false
    private var isStopRequested = false
    private var isFinished = false
    private var finishWaiters: [CheckedContinuation<Void, Never>] = []

    // mqtt_protocol.h, which the CMosquitto shim does not include.
    static let propertySubscriptionIdentifier: Int32 = 11  // MQTT_PROP_SUBSCRIPTION_IDENTIFIER
    static let propertySessionExpiryInterval: Int32 = 17  // MQTT_PROP_SESSION_EXPIRY_INTERVAL
    static let subscribeOptionSendRetainNew: Int32 = 0x10  // MQTT_SUB_OPT_SEND_RETAIN_NEW
    static let success = Int32(truncatingIfNeeded: MOSQ_ERR_SUCCESS.rawValue)
    static let errnoError = Int32(truncatingIfNeeded: MOSQ_ERR_ERRNO.rawValue)
    static let noConnection = Int32(truncatingIfNeeded: MOSQ_ERR_NO_CONN.rawValue)

    /// `mosquitto_lib_init`, once per process.
    private static let libraryInitialized: Bool = {
        mosquitto_lib_init() == success
    }()

    init(
        configuration: Configuration, logger: Logger,
        onMessage: @escaping @Sendable (Message) -> Disposition,
        onGroupEnd: @escaping @Sendable (GroupEnd) -> MQTTGroupCommit? = { _ in nil },
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) throws(MQTTClientError) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "edgelog.mqtt.client_id"] = "\(configuration.clientId)"
        self.logger = logger
        self.onMessage = onMessage
        self.onGroupEnd = onGroupEnd
        self.onEvent = onEvent
        guard Self.libraryInitialized else { throw MQTTClientError("mosquitto_lib_init failed") }
        guard let handle = mosquitto_new(configuration.clientId, false, nil) else {
            throw MQTTClientError("mosquitto_new failed: \(String(cString: strerror(errno)))")
        }
        self.handle = handle
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        try Self.check(mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5), "setting MQTT v5")
        try Self.check(mosquitto_threaded_set(handle, true), "setting threaded mode")
        try Self.check(
            mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, Int32(configuration.receiveMaximum)),
            "setting the Receive Maximum to \(configuration.receiveMaximum)")
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

    /// Wraps a delivery for `onMessage`.
    func message(from raw: mosquitto_message, properties: OpaquePointer?) -> Message {
        let payload =
            raw.payload.map { UnsafeRawBufferPointer(start: $0, count: Int(raw.payloadlen)) }
            ?? UnsafeRawBufferPointer(start: nil, count: 0)
        return Message(
            topic: String(cString: raw.topic), payload: payload, qos: raw.qos, retain: raw.retain, properties: properties)
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

    /// Stops taking messages, lets the group being committed finish, writes the queued PUBACKs
    /// and a DISCONNECT, and destroys the libmosquitto handle. Returns when all that is done.
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

    var stopRequested: Bool { control.withLock { isStopRequested } }

    /// `stopRequested` for a caller that holds `control`.
    var stopRequestedLocked: Bool { isStopRequested }

    /// Called by the network thread as its last act.
    func didFinish() {
        let waiters = control.withLock {
            isFinished = true
            let waiters = finishWaiters
            finishWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Errors

    static func check(_ rc: Int32, _ what: String) throws(MQTTClientError) {
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
package struct MQTTClientError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
