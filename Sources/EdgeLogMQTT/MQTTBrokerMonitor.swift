import EdgeLogStorage
import Logging
import Metrics
import Synchronization
import EdgeLogCore

/// Watches the broker's own counters (mosquitto's `$SYS` tree) so that messages the broker
/// throws away never go unseen.
///
/// mosquitto drops a QoS 1 message for a client when that client's queue is full
/// (`max_queued_messages`, default 1000, or `max_queued_bytes`): an edgelog that is down,
/// restarting or behind has its persistent session's queue fill up, and the broker logs
/// "Outgoing messages are being dropped for client …" and counts the message in
/// `$SYS/broker/publish/messages/dropped`. That counter is the broker's, over all its clients,
/// since the broker started; it is published (retained, QoS 0) every `sys_interval` seconds
/// when it changed.
///
/// The monitor exports the broker's counters as gauges and, whenever the dropped count rises,
/// logs an error naming the cause and the fix and counts the rise in
/// `edgelog_mqtt_broker_drops_total`. The last count seen is kept in `stateFile` together with
/// the broker's uptime then, so drops that happened while edgelog was down are reported too:
/// at the next start if the broker still holds the count (mosquitto publishes its `$SYS`
/// values retained with a 60 s expiry, and the count only when it changes), else with the
/// count's next change, which then includes them. A broker restart (its uptime or its count
/// went down) resets the baseline to zero. The wall clock is not used for that: boxes without
/// a real-time clock step it at boot. (A restart that neither makes the uptime smaller than
/// the saved one nor the count lower goes unnoticed and under-reports by the old count.)
/// Without any earlier count (first start), a non-zero count is reported once as a warning,
/// since it may predate edgelog.
///
/// Thread safety: `received` from any thread (the connections' network threads); the rest
/// from anywhere.
package final class MQTTBrokerMonitor: Sendable {
    /// The topics, uptime first so that it is known before the count comes.
    static let topics = [
        uptimeTopic, droppedTopic, storedTopic, clientsTopic,
    ]
    static let uptimeTopic = "$SYS/broker/uptime"
    static let droppedTopic = "$SYS/broker/publish/messages/dropped"
    static let storedTopic = "$SYS/broker/store/messages/count"
    static let clientsTopic = "$SYS/broker/clients/connected"

    /// What `edgelog status` and the HTTP API show.
    package struct Snapshot: Sendable, Equatable {
        /// The broker's counters as last published; nil until seen.
        package var droppedMessages: Int64? = nil
        package var storedMessages: Int64? = nil
        package var connectedClients: Int64? = nil
        /// Rises of the dropped count seen by this edgelog (across its restarts, with the
        /// persisted baseline).
        package var dropsSeen: Int64 = 0
        /// Wall-clock ms of the last rise.
        package var lastDropAtMs: Int64? = nil
    }

    private struct State {
        var snapshot = Snapshot()
        /// The dropped count of the baseline and the broker's uptime when it was seen.
        var baselineDropped: Int64? = nil
        var baselineUptimeS: Int64? = nil
        /// The broker's uptime as last published.
        var uptimeS: Int64? = nil
        /// When the dropped count was last seen (the start of the window a rise happened in).
        var droppedSeenAtMs: Int64? = nil
    }

    let brokerName: String
    private let stateFile: String?
    private let logger: Logger
    private let state: Mutex<State>
    private let droppedGauge: Gauge
    private let storedGauge: Gauge
    private let clientsGauge: Gauge
    private let dropsCounter: Counter
    private let loss: LossRecorder?

    init(brokerName: String, stateFile: String?, loss: LossRecorder? = nil, logger: Logger) {
        self.brokerName = brokerName
        self.loss = loss
        self.stateFile = stateFile
        self.logger = logger
        var initial = State()
        if let stateFile {
            do {
                if let saved = try Checkpoint.read(from: stateFile) {
                    initial.baselineDropped = saved["dropped"]
                    initial.baselineUptimeS = saved["uptime_s"]
                    initial.snapshot.dropsSeen = saved["drops_seen"] ?? 0
                    initial.droppedSeenAtMs = saved["seen_at_ms"]
                }
            } catch {
                logger.warning("cannot read the MQTT broker's saved counters; starting over", metadata: ["edgelog.error": "\(error)"])
            }
        }
        self.state = Mutex(initial)
        let dimensions = [("broker", brokerName)]
        droppedGauge = Gauge(label: "edgelog_mqtt_broker_dropped_messages", dimensions: dimensions)
        storedGauge = Gauge(label: "edgelog_mqtt_broker_stored_messages", dimensions: dimensions)
        clientsGauge = Gauge(label: "edgelog_mqtt_broker_connected_clients", dimensions: dimensions)
        dropsCounter = Counter(label: "edgelog_mqtt_broker_drops_total", dimensions: dimensions)
    }

    var snapshot: Snapshot { state.withLock { $0.snapshot } }

    /// Whether `topic` is one of the monitor's (never a route's: `$` topics match no `#`/`+`).
    static func isMonitored(_ topic: String) -> Bool { topic.hasPrefix("$SYS/") }

    /// A `$SYS` message; `payload` is its text ("123", "4567 seconds").
    func received(topic: String, payload: UnsafeRawBufferPointer, nowMs: Int64 = wallClockMs()) {
        guard let value = Self.leadingInteger(payload) else { return }
        switch topic {
        case Self.uptimeTopic:
            state.withLock { $0.uptimeS = value }
        case Self.droppedTopic:
            observeDropped(value, nowMs: nowMs)
        case Self.storedTopic:
            state.withLock { $0.snapshot.storedMessages = value }
            storedGauge.record(value)
        case Self.clientsTopic:
            state.withLock { $0.snapshot.connectedClients = value }
            clientsGauge.record(value)
        default:
            break
        }
    }

    private enum Finding {
        case none
        case rise(by: Int64, total: Int64, sinceMs: Int64?)
        case unknownOrigin(Int64)
    }

    private func observeDropped(_ count: Int64, nowMs: Int64) {
        droppedGauge.record(count)
        let (finding, save) = state.withLock { state -> (Finding, Checkpoint) in
            let sinceMs = state.droppedSeenAtMs
            defer {
                state.droppedSeenAtMs = nowMs
                state.snapshot.droppedMessages = count
                state.baselineDropped = count
                if let uptime = state.uptimeS { state.baselineUptimeS = uptime }
            }
            var baseline = state.baselineDropped
            if let saved = state.baselineUptimeS, let current = state.uptimeS, current < saved {
                baseline = 0  // the broker restarted: its counter did too
            }
            var finding = Finding.none
            if let baseline {
                let rise = count >= baseline ? count - baseline : count  // lower: restarted
                if rise > 0 {
                    finding = .rise(by: rise, total: count, sinceMs: sinceMs)
                    state.snapshot.dropsSeen += rise
                    state.snapshot.lastDropAtMs = nowMs
                }
            } else if count > 0 {
                finding = .unknownOrigin(count)
            }
            var values = ["dropped": count, "drops_seen": state.snapshot.dropsSeen, "seen_at_ms": nowMs]
            if let uptime = state.uptimeS ?? state.baselineUptimeS { values["uptime_s"] = uptime }
            return (finding, Checkpoint(values))
        }
        switch finding {
        case .none:
            break
        case .rise(let rise, let total, let sinceMs):
            dropsCounter.increment(by: Int(rise))
            // The counter is the broker's, over all its clients: a bound on what edgelog lost.
            loss?.record(
                LossMarker(
                    reason: .mqttBrokerDropped, countAtMost: rise, fromMs: sinceMs, toMs: nowMs, detectedAtMs: nowMs,
                    detail: "the MQTT broker '\(brokerName)' dropped \(rise) messages ($SYS/broker/publish/messages/dropped is now \(total)); the counter covers all of its clients"))
            logger.error(
                "the MQTT broker dropped \(rise) messages: a client's queue was full, most likely edgelog's persistent session while edgelog was down or behind; raise max_queued_messages (and max_queued_bytes) in the broker's configuration (see deploy/mosquitto-edgelog.conf)",
                metadata: ["edgelog.mqtt.broker_dropped_total": "\(total)"])
        case .unknownOrigin(let total):
            logger.warning(
                "the MQTT broker has dropped \(total) messages since it started, before edgelog watched it; some may have been for edgelog: if so, raise max_queued_messages in the broker's configuration (see deploy/mosquitto-edgelog.conf)")
        }
        guard let stateFile else { return }
        do {
            try save.write(to: stateFile)
        } catch {
            logger.info("cannot save the MQTT broker's counters", metadata: ["edgelog.error": "\(error)"])
        }
    }

    /// The number at the start of `bytes` ("42", "42 seconds"); nil if there is none.
    static func leadingInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        for byte in bytes {
            guard byte >= 0x30, byte <= 0x39, digits < 18 else { break }
            value = value * 10 + Int64(byte - 0x30)
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
