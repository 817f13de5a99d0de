import EdgeLogStorage
public import Logging
import Metrics
import NIOCore
public import ServiceLifecycle
import Synchronization
public import EdgeLogCore

/// MQTT ingest from one broker: `broker.connections` libmosquitto clients with persistent
/// sessions and QoS 1 subscriptions to every route's filter, each message appended to the log
/// topic of the first route that matches its MQTT topic.
///
/// ## Records
/// Value: the payload exactly as received (any bytes; empty stays empty, not null), copied
/// once out of libmosquitto's buffer. Key: the route's key template rendered with the
/// filter's captures, or none. Timestamp: the wall clock when the message arrived (ms).
/// Headers: `mqtt.topic` (the MQTT topic), `mqtt.qos` (as delivered: "1" for QoS 1, "0" when
/// the publisher used QoS 0), `mqtt.retain` ("true"/"false"; true for a retained message the
/// broker replays to a new subscription).
///
/// A message no route matches is counted (`outcome=unrouted`), logged at debug and
/// acknowledged: no route will ever take it, so having the broker redeliver it could only
/// repeat this forever and hold up the messages behind it. (With routes changed between
/// restarts, the persistent session may still hold subscriptions no route wants any more.)
///
/// ## `ack = durable`
/// Each connection's network thread reads every PUBLISH its socket holds (up to the broker's
/// window, the Receive Maximum) into a group (`MQTTIngestGroup`), then starts the group's
/// commit: one append per log topic, which the ingestor splits into one append per
/// partition, all concurrent, each partition committing by its flush policy. The thread waits
/// for the commit and only then lets libmosquitto write the group's PUBACKs (see
/// `MQTTClient`), so a crash before the commit means redelivery: at-least-once, at one commit
/// per group instead of one per message. `connections > 1` with shared subscriptions runs
/// that many groups in parallel, which the partitions' writers commit together.
///
/// When an append fails and trying again could help (disk budget full, disk full, fenced
/// partition, log closed) the whole group is refused: `MQTTClient` drops the connection
/// before any PUBACK of it is written, reconnects after a backoff that grows with each
/// consecutive refusal (1, 2, 4 … 30 s), and the broker redelivers the group (records of it
/// already committed to another topic come twice). Failures that no retry can fix — a record
/// larger than the topic's maximum batch (only that record), a route to an invalid or
/// (auto-creation off) missing topic — are counted, logged and acknowledged, like an
/// unroutable message; refusing them would block every later message of the session
/// behind them forever.
///
/// ## `ack = fast`
/// The callback queues the record in a bounded in-memory queue (`fastQueueCapacity`, 10,000
/// by default) and returns, so libmosquitto acknowledges at once; a task takes up to
/// `fastBatchMaxRecords` at a time and appends them, one request per log topic in arrival
/// order. When the queue is full the callback blocks until there is room (backpressure: the
/// broker keeps the rest). Transient append failures are retried with backoff (100 ms up to
/// 5 s) while the queue fills up and then blocks, permanent ones drop the records.
///
/// Loss window: a crash (kill -9, power loss) loses every record that was acknowledged and
/// not yet committed: up to `fastQueueCapacity` queued plus the batch being appended (at
/// most `fastBatchMaxRecords`), plus what the log's flush policy had not made durable. A
/// graceful stop loses nothing unless the log refuses the last batches.
///
/// ## Stopping
/// `run()` runs until graceful shutdown (or cancellation). Then every client stops taking
/// messages: the message being handled finishes (for durable, its commit), the PUBACKs
/// already queued are written, then a DISCONNECT; for fast, the queue is then drained into
/// the log. The log must stay open until `run()` returns (the service group stops services
/// in reverse order, so list this one after storage).
///
/// ## The broker's counters
/// With `broker_stats` on, the first connection also subscribes to the broker's `$SYS`
/// counters, which `MQTTBrokerMonitor` turns into metrics, status and errors.
///
/// ## Metrics
/// `edgelog_mqtt_messages_total{broker, outcome=stored|unrouted|failed}` (failed counts
/// failed attempts: a refused message comes back and may be counted again),
/// `edgelog_mqtt_connected{broker, connection=<client id>}` (1 while connected),
/// `edgelog_mqtt_group_messages{broker}` (messages per durable group) and
/// `edgelog_mqtt_commit_seconds{broker}` (from reading a group's first message to its commit).
/// The same counts are in `statistics`.
public final class MQTTIngestService: Service, Sendable {
    public struct Statistics: Sendable, Equatable {
        public var stored = 0
        public var unrouted = 0
        public var failed = 0
        /// Extra copies of a message delivered for overlapping subscriptions (dropped).
        public var duplicates = 0
        /// Durable groups committed.
        public var groups = 0
    }

    /// Knobs the configuration file does not expose; tests shorten the delays.
    struct Tuning: Sendable {
        var reconnectDelayMinMs = 1_000
        var reconnectDelayMaxMs = 30_000
        var fastQueueCapacity = 10_000
        var fastBatchMaxRecords = 1_000
    }

    public let broker: EdgelogConfig.Broker
    private let routerState: Mutex<MQTTRouter>
    let sink: any MQTTRecordSink
    let tuning: Tuning
    let logger: Logger
    /// The broker's `$SYS` counters; nil with `broker_stats = false`.
    let monitor: MQTTBrokerMonitor?
    /// `ack = fast` with a data directory: lets the next start report what a crash lost.
    let fastAckMark: MQTTFastAckMark?
    let loss: LossRecorder?
    let storedCount = Atomic<Int>(0)
    let unroutedCount = Atomic<Int>(0)
    let failedCount = Atomic<Int>(0)
    let duplicateCount = Atomic<Int>(0)
    let storedBytes = Atomic<Int>(0)
    let lastStoredMs = Atomic<Int64>(0)
    /// Why the connections are not up (the last connect failure), since when, and the
    /// attempts made since; cleared when every connection is subscribed.
    let connectionProblem = Mutex<(reason: String, sinceMs: Int64, attempts: Int)?>(nil)
    let groupCount = Atomic<Int>(0)
    private let subscribedConnections = Mutex<Set<Int>>([])
    let storedCounter: Counter
    let unroutedCounter: Counter
    let failedCounter: Counter
    let groupSizes: Recorder
    let commitDuration: Timer
    private let allocator = ByteBufferAllocator()

    /// `stateDirectory`: where the broker's counters are remembered across restarts (the
    /// data directory); nil keeps them in memory only.
    public convenience init(
        broker: EdgelogConfig.Broker, routes: [EdgelogConfig.Route], ingestor: Ingestor, stateDirectory: String?,
        loss: LossRecorder? = nil, logger: Logger
    ) {
        self.init(broker: broker, routes: routes, sink: ingestor, stateDirectory: stateDirectory, loss: loss, logger: logger)
    }

    init(
        broker: EdgelogConfig.Broker, routes: [EdgelogConfig.Route], sink: any MQTTRecordSink, stateDirectory: String? = nil,
        loss: LossRecorder? = nil, logger: Logger, tuning: Tuning = Tuning()
    ) {
        self.broker = broker
        self.routerState = Mutex(MQTTRouter(routes: routes))
        self.sink = sink
        self.tuning = tuning
        var logger = logger
        logger[metadataKey: "edgelog.mqtt.broker_name"] = "\(broker.name)"
        self.logger = logger
        self.loss = loss
        self.fastAckMark =
            broker.ack == .fast
            ? stateDirectory.map { MQTTFastAckMark(path: $0 + "/mqtt-\(broker.name).fast-ack", logger: logger) } : nil
        self.monitor =
            broker.brokerStats
            ? MQTTBrokerMonitor(
                brokerName: broker.name, stateFile: stateDirectory.map { $0 + "/mqtt-\(broker.name).broker-counters" },
                loss: loss, logger: logger)
            : nil
        func counter(_ outcome: String) -> Counter {
            Counter(label: "edgelog_mqtt_messages_total", dimensions: [("broker", broker.name), ("outcome", outcome)])
        }
        self.storedCounter = counter("stored")
        self.unroutedCounter = counter("unrouted")
        self.failedCounter = counter("failed")
        self.groupSizes = Recorder(label: "edgelog_mqtt_group_messages", dimensions: [("broker", broker.name)])
        self.commitDuration = Timer(
            label: "edgelog_mqtt_commit_seconds", dimensions: [("broker", broker.name)], preferredDisplayUnit: .seconds)
    }

    public var statistics: Statistics {
        Statistics(
            stored: storedCount.load(ordering: .relaxed), unrouted: unroutedCount.load(ordering: .relaxed),
            failed: failedCount.load(ordering: .relaxed), duplicates: duplicateCount.load(ordering: .relaxed),
            groups: groupCount.load(ordering: .relaxed))
    }

    /// The broker's counters as last seen; nil with `broker_stats = false`.
    package var brokerCounters: MQTTBrokerMonitor.Snapshot? { monitor?.snapshot }

    /// How many connections are connected and have their subscriptions acknowledged.
    public var readyConnections: Int { subscribedConnections.withLock { $0.count } }

    /// The routes in use.
    var router: MQTTRouter { routerState.withLock { $0 } }

    /// Replaces the routes while running if the new ones subscribe to the same filters in the
    /// same order (changed log topics or keys); anything else needs a restart, which the log
    /// says. Returns whether the routes were replaced.
    @discardableResult
    public func reload(routes: [EdgelogConfig.Route]) -> Bool {
        let new = MQTTRouter(routes: routes)
        let replaced = routerState.withLock { router in
            guard router.subscriptions == new.subscriptions else { return false }
            router = new
            return true
        }
        if replaced {
            logger.info("MQTT routes reloaded", metadata: ["edgelog.mqtt.routes": "\(routes.count)"])
        } else {
            logger.info(
                "MQTT routes subscribe to other filters now; restart edgelog to apply them",
                metadata: ["edgelog.mqtt.filters": "\(new.subscriptions)"])
        }
        return replaced
    }

    public func run() async throws {
        let connections = max(1, broker.connections)
        let clientIds = MQTTRouter.clientIds(clientId: broker.clientId, connections: connections)
        let filters = router.subscriptionFilters(connections: connections, sharedGroup: broker.sharedGroup)
        let queue = broker.ack == .fast ? MQTTRecordQueue(capacity: tuning.fastQueueCapacity) : nil
        var clients: [MQTTClient] = []
        for (index, clientId) in clientIds.enumerated() {
            let configuration = MQTTClient.Configuration(
                host: broker.host, port: broker.port, clientId: clientId, username: broker.username,
                password: broker.password, tlsCAFile: broker.tlsCAFile, tlsCertFile: broker.tlsCertFile,
                tlsKeyFile: broker.tlsKeyFile, keepaliveSeconds: broker.keepaliveSeconds, subscriptions: filters,
                systemTopics: index == 0 && monitor != nil ? MQTTBrokerMonitor.topics : [],
                receiveMaximum: broker.receiveMaximum,
                reconnectDelayMinMs: tuning.reconnectDelayMinMs, reconnectDelayMaxMs: tuning.reconnectDelayMaxMs)
            let connected = Gauge(
                label: "edgelog_mqtt_connected", dimensions: [("broker", broker.name), ("connection", clientId)])
            connected.record(0)
            // One per connection, used by its network thread only.
            let group = MQTTIngestGroup()
            do {
                clients.append(
                    try MQTTClient(
                        configuration: configuration, logger: logger,
                        onMessage: { [self] message in handle(message, queue: queue, group: group) },
                        onGroupEnd: { [self] end in
                            switch end {
                            case .commit: return commit(group)
                            case .discard:
                                group.removeAll()
                                return nil
                            }
                        },
                        onEvent: { [self] event in
                            switch event {
                            case .connected: connected.record(1)
                            case .subscribed:
                                let all = subscribedConnections.withLock { ready in
                                    ready.insert(index)
                                    return ready.count == connections
                                }
                                if all { connectionProblem.withLock { $0 = nil } }
                            case .connectFailed(let reason):
                                connectionProblem.withLock { problem in
                                    problem = (reason, problem?.sinceMs ?? wallClockMs(), (problem?.attempts ?? 0) + 1)
                                }
                            case .disconnected:
                                connected.record(0)
                                _ = subscribedConnections.withLock { $0.remove(index) }
                            }
                        }))
            } catch {
                throw MQTTClientError("MQTT broker '\(broker.name)', client '\(clientId)': \(error)")
            }
        }
        reportFastAckCrash()
        let drain = queue.map { queue in Task { await self.drain(queue) } }
        let tick = fastAckMark.map { mark in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(MQTTFastAckMark.tickMs))
                    mark.markIdleIfSettled()
                }
            }
        }
        for client in clients { client.start() }
        logger.info(
            "MQTT ingest started",
            metadata: [
                "edgelog.mqtt.broker": "\(broker.host):\(broker.port)", "edgelog.mqtt.ack": "\(broker.ack.rawValue)",
                "edgelog.mqtt.connections": "\(connections)", "edgelog.mqtt.filters": "\(filters)",
                "edgelog.mqtt.receive_maximum": "\(broker.receiveMaximum)",
            ])

        // Until graceful shutdown; a cancelled task stops the same way.
        try? await gracefulShutdown()

        await withTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { await client.stop() } }
        }
        queue?.close()
        await drain?.value
        tick?.cancel()
        fastAckMark?.markIdleIfSettled()
        let statistics = self.statistics
        logger.info(
            "MQTT ingest stopped",
            metadata: [
                "edgelog.mqtt.stored": "\(statistics.stored)", "edgelog.mqtt.unrouted": "\(statistics.unrouted)",
                "edgelog.mqtt.failed": "\(statistics.failed)",
            ])
    }

    // MARK: Messages (on a connection's network thread)

    private func handle(
        _ message: MQTTClient.Message, queue: MQTTRecordQueue?, group: MQTTIngestGroup
    ) -> MQTTClient.Disposition {
        if let monitor, MQTTBrokerMonitor.isMonitored(message.topic) {
            monitor.received(topic: message.topic, payload: message.payload)
            return .acknowledge
        }
        let router = self.router
        guard let destination = router.route(message.topic) else {
            unroutedCount.add(1, ordering: .relaxed)
            unroutedCounter.increment()
            logger.debug("no route for the MQTT topic; dropped", metadata: ["edgelog.mqtt.topic": "\(message.topic)"])
            return .acknowledge
        }
        if let owner = router.owningSubscription(of: message.topic), !message.isDelivered(forSubscription: owner) {
            duplicateCount.add(1, ordering: .relaxed)
            logger.trace("copy for an overlapping subscription; dropped", metadata: ["edgelog.mqtt.topic": "\(message.topic)"])
            return .acknowledge
        }
        let record = makeRecord(message, key: destination.key)
        if let queue {
            fastAckMark?.reserve()
            // False only while stopping: not queued, so not acknowledged either.
            guard queue.push(.init(topic: destination.topic, record: record)) else {
                fastAckMark?.settle(1)
                return .refuse
            }
            return .acknowledge
        }
        group.append(record, to: destination.topic)
        return .acknowledge
    }

    private static let qosValues = (0...2).map { ByteBuffer(string: String($0)) }
    private static let trueValue = ByteBuffer(string: "true")
    private static let falseValue = ByteBuffer(string: "false")

    func makeRecord(_ message: MQTTClient.Message, key: String?) -> Record {
        var value = allocator.buffer(capacity: message.payload.count)
        value.writeBytes(message.payload)
        let qos = Self.qosValues.indices.contains(Int(message.qos)) ? Self.qosValues[Int(message.qos)] : ByteBuffer(string: String(message.qos))
        return Record(
            timestamp: wallClockMs(), key: key.map { ByteBuffer(string: $0) }, value: value,
            headers: [
                RecordHeader(key: "mqtt.topic", value: ByteBuffer(string: message.topic)),
                RecordHeader(key: "mqtt.qos", value: qos),
                RecordHeader(key: "mqtt.retain", value: message.retain ? Self.trueValue : Self.falseValue),
            ])
    }

    /// Failures that retrying the same record cannot fix.
    static func isPermanent(_ error: IngestError) -> Bool {
        switch error {
        case .recordTooLarge, .invalidTopic, .unknownTopic, .unknownPartition: true
        case .storage(.recordTooLarge), .storage(.invalidTopicName), .storage(.unknownTopic): true
        case .storage: false
        }
    }

    // MARK: Outcomes (both ack modes)

    func countStored(_ records: [Record]) {
        var bytes = 0
        for record in records { bytes += record.value?.readableBytes ?? 0 }
        storedCount.add(records.count, ordering: .relaxed)
        storedBytes.add(bytes, ordering: .relaxed)
        lastStoredMs.store(wallClockMs(), ordering: .relaxed)
        storedCounter.increment(by: records.count)
    }

    func countFailed(_ count: Int) {
        failedCount.add(count, ordering: .relaxed)
        failedCounter.increment(by: count)
    }

    /// When `error` says one record is larger than the topic allows, drops (and counts and
    /// logs) that record and returns true: the others can still be stored.
    func dropTooLargeRecord(from records: inout [Record], after error: IngestError, topic: String) -> Bool {
        guard case .recordTooLarge(let index, _, _) = error, records.indices.contains(index) else { return false }
        reportUnstorable(records[index...index], topic: topic, because: "\(error)")
        records.remove(at: index)
        countFailed(1)
        logger.info(
            "MQTT message too large for the topic; dropped",
            metadata: ["edgelog.topic": "\(topic)", "edgelog.error": "\(error)"])
        return true
    }

    /// A loss marker for acknowledged messages the log will never hold: the broker has
    /// forgotten them, so only the marker tells a reader of the topic they existed.
    func reportUnstorable(_ records: some Collection<Record>, topic: String, because reason: String) {
        guard let loss, !records.isEmpty else { return }
        let times = records.map(\.timestamp)
        loss.record(
            LossMarker(
                reason: .mqttUnstorable, topic: topic, count: Int64(records.count), fromMs: times.min(), toMs: times.max(),
                detail: "\(records.count) MQTT message(s) from broker '\(broker.name)' were acknowledged but not stored: \(reason)"))
    }
}
