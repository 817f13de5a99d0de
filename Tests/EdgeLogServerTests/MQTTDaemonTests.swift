import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `ack = durable` end to end: the real `edgelog serve` subscribed to a real mosquitto, killed
/// with SIGKILL while QoS 1 messages stream in, then started again.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct MQTTDaemonTests {
    static let clientId = "edgelog-crash-test"

    static func config(broker: MQTTTestBroker, ack: String) -> String {
        """
        [[topics]]
        name = "sensors"
        partitions = 1

        [[mqtt.brokers]]
        name = "local"
        port = \(broker.port)
        client_id = "\(clientId)"
        ack = "\(ack)"
        keepalive_seconds = 10

        [[mqtt.routes]]
        filter = "sensors/{device}/#"
        topic = "sensors"
        key = "{device}"
        """
    }

    /// Every value in the topic's one partition, in offset order, through the HTTP API.
    static func values(_ daemon: DaemonProcess) async throws -> [String] {
        try await daemon.recordValues("sensors")
    }

    static func pubacks(_ broker: MQTTTestBroker) -> Int {
        broker.log.components(separatedBy: "Received PUBACK from \(clientId)").count - 1
    }

    @Test func killMinus9WhileMessagesArriveLosesNoneWithAckDurable() async throws {
        let broker = try MQTTTestBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(broker: broker, ack: "durable"))
        defer { daemon.remove() }
        try await daemon.start()
        try await mqttEventually("the subscription") { broker.log.contains("Sending SUBACK to \(Self.clientId)") }

        let messages = (0..<30_000).map { "m\($0)" }
        let publisher = try broker.startPublishing("sensors/device-1/reading", lines: messages)
        // Killed while it acknowledges messages a group at a time.
        try await mqttEventually("2000 acknowledged messages") { Self.pubacks(broker) >= 2000 }
        try await daemon.stop(signal: SIGKILL)
        let acknowledgedBeforeTheKill = Self.pubacks(broker)
        publisher.waitUntilExit()
        #expect(publisher.terminationStatus == 0)
        #expect(acknowledgedBeforeTheKill < messages.count, "the kill came too late to prove anything")

        try await daemon.start()
        // The broker delivers the session's messages in order: the marker comes last.
        try broker.publish("sensors/device-1/reading", "end")
        try await mqttEventually("the marker", timeout: .seconds(120)) { try await Self.values(daemon).last == "end" }
        let values = try await Self.values(daemon)
        let missing = Set(messages).subtracting(values)
        #expect(missing.isEmpty, "\(missing.count) messages lost")
        // At-least-once: at most the group whose commit the kill interrupted comes twice, and
        // a group is at most the broker's window (the Receive Maximum, 1000 by default).
        let duplicates = values.count - Set(values).count
        #expect(duplicates <= 1000, "\(duplicates) duplicates")
        #expect(try await daemon.stop() == 0)
    }

    /// The plant of the first user: 200 devices at 10 Hz (2000 QoS 1 readings a second) for
    /// 10 s, through a broker with the deploy configuration's queue settings, while edgelog is
    /// killed with SIGKILL and restarted 8 times. Before groups, 3,653 of 20,000 arrived: edgelog
    /// fell behind and the broker's default queue of 1000 overflowed.
    @Test func aSmallPlantSurvivesEightKillsWithEveryReading() async throws {
        let broker = try MQTTTestBroker(extraConfiguration: try MQTTTestBroker.deployQueueSettings() + ["sys_interval 1"])
        let daemon = try DaemonProcess(extraConfig: Self.config(broker: broker, ack: "durable"))
        defer { daemon.remove() }
        try await daemon.start()
        try await mqttEventually("the subscription") { broker.log.contains("Sending SUBACK to \(Self.clientId)") }
        let readings = 20_000
        let publisher = try broker.startWindowedPublisher("sensors/device-1/reading", count: readings, rate: 2_000)
        for kill in 0..<8 {
            let before = Self.pubacks(broker)
            try await mqttEventually("acknowledgements before kill \(kill)") {
                Self.pubacks(broker) >= before + 300 || !publisher.isRunning
            }
            try await daemon.stop(signal: SIGKILL)
            try await daemon.start()
        }
        publisher.waitUntilExit()
        #expect(publisher.terminationStatus == 0, "the broker did not take every reading")
        try broker.publish("sensors/device-1/reading", "end")
        try await mqttEventually("the marker", timeout: .seconds(120)) { try await Self.values(daemon).last == "end" }
        let sequences = try await Self.values(daemon).dropLast().map { value -> Int in
            let digits = value.drop { !$0.isNumber }.prefix { $0.isNumber }
            return Int(digits) ?? -1
        }
        let missing = Set(0..<readings).subtracting(sequences)
        #expect(missing.isEmpty, "\(missing.count) readings lost")
        print("8 kills at 2000 readings/s: \(sequences.count - Set(sequences).count) duplicates of \(readings)")
        #expect(!broker.log.contains("Outgoing messages are being dropped"))
        #expect(try await Self.brokerCounters(daemon)?["drops_seen"] as? Int == 0)
        #expect(try await daemon.stop() == 0)
    }

    @Test func messagesTheBrokerDropsWhileEdgelogIsDownAreReported() async throws {
        // A queue of 5 for the offline session; $SYS every second.
        let broker = try MQTTTestBroker(maxQueuedMessages: 5, extraConfiguration: ["sys_interval 1"])
        let daemon = try DaemonProcess(extraConfig: Self.config(broker: broker, ack: "durable"))
        defer { daemon.remove() }
        try await daemon.start()
        try await mqttEventually("the broker's dropped count") { try await Self.brokerCounters(daemon)?["dropped_messages"] != nil }
        #expect(try await Self.brokerCounters(daemon)?["drops_seen"] as? Int == 0)
        #expect(try await daemon.stop() == 0)

        // Down: the broker keeps 5 of these for edgelog's session and drops 15.
        try broker.publish("sensors/device-1/reading", lines: (0..<20).map { "d\($0)" })
        try await daemon.start()
        try await mqttEventually("the drops to be seen") { try await Self.brokerCounters(daemon)?["drops_seen"] as? Int == 15 }
        #expect(try await Self.values(daemon) == (0..<5).map { "d\($0)" })
        #expect(daemon.stderr.contains("the MQTT broker dropped 15 messages"))
        #expect(daemon.stderr.contains("raise max_queued_messages"))
        let (_, metrics) = try await daemon.request(.GET, "/metrics")
        #expect(metrics.contains(#"edgelog_mqtt_broker_drops_total{broker="local"} 15"#))
        #expect(metrics.contains(#"edgelog_mqtt_broker_dropped_messages{broker="local"} 15"#))
        let (status, output, _) = try DaemonProcess.cli(["status", "--server", daemon.baseURL])
        #expect(status == 0)
        #expect(output.contains("15 dropped"), "\(output)")
        #expect(output.contains("WARNING: the broker dropped 15 messages"), "\(output)")
        #expect(try await daemon.stop() == 0)
    }

    /// The first MQTT broker's `broker_counters` in /v1/status.
    static func brokerCounters(_ daemon: DaemonProcess) async throws -> [String: Any]? {
        let (_, body) = try await daemon.request(.GET, "/v1/status")
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return (json?["mqtt"] as? [[String: Any]])?.first?["broker_counters"] as? [String: Any]
    }
}
