@testable import EdgeLogServer
import Foundation
import Testing
@testable import EdgeLogMQTT

/// The `$SYS` counters' bookkeeping: when a rise of the broker's dropped count is a loss to
/// report, across edgelog restarts and broker restarts.
@Suite struct MQTTBrokerMonitorTests {
    static func stateFile() -> String {
        NSTemporaryDirectory() + "edgelog-monitor-\(UUID().uuidString.prefix(8)).counters"
    }

    static func send(_ monitor: MQTTBrokerMonitor, _ topic: String, _ text: String, nowMs: Int64 = 1_000_000_000) {
        Array(text.utf8).withUnsafeBytes { monitor.received(topic: topic, payload: $0, nowMs: nowMs) }
    }

    @Test func theCountersAreReadFromTheirText() {
        #expect(Array("42".utf8).withUnsafeBytes { MQTTBrokerMonitor.leadingInteger($0) } == 42)
        #expect(Array("3600 seconds".utf8).withUnsafeBytes { MQTTBrokerMonitor.leadingInteger($0) } == 3600)
        #expect(Array("seconds".utf8).withUnsafeBytes { MQTTBrokerMonitor.leadingInteger($0) } == nil)
        #expect(Array("".utf8).withUnsafeBytes { MQTTBrokerMonitor.leadingInteger($0) } == nil)
        #expect(Array("99999999999999999999999".utf8).withUnsafeBytes { MQTTBrokerMonitor.leadingInteger($0) } == 999_999_999_999_999_999)
    }

    @Test func aRiseWhileWatchingIsADropAndTheGaugesFollowTheBroker() {
        let monitor = MQTTBrokerMonitor(brokerName: "t", stateFile: nil, logger: mqttTestLogger)
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "0")
        Self.send(monitor, MQTTBrokerMonitor.storedTopic, "17")
        Self.send(monitor, MQTTBrokerMonitor.clientsTopic, "3")
        #expect(monitor.snapshot == .init(droppedMessages: 0, storedMessages: 17, connectedClients: 3, dropsSeen: 0))
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "5", nowMs: 7)
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "5")
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "12", nowMs: 9)
        #expect(monitor.snapshot.dropsSeen == 12 && monitor.snapshot.droppedMessages == 12)
        #expect(monitor.snapshot.lastDropAtMs == 9)
    }

    @Test func dropsWhileEdgelogWasDownAreReportedAtTheNextStart() {
        let file = Self.stateFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let first = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        Self.send(first, MQTTBrokerMonitor.uptimeTopic, "100 seconds", nowMs: 1_000_000)
        Self.send(first, MQTTBrokerMonitor.droppedTopic, "4", nowMs: 1_000_000)
        #expect(first.snapshot.dropsSeen == 0, "a count from before edgelog watched is not counted as its own")

        // Same broker (its uptime grew), 2 minutes later: 30 more dropped meanwhile.
        let second = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        Self.send(second, MQTTBrokerMonitor.uptimeTopic, "220 seconds", nowMs: 1_120_000)
        Self.send(second, MQTTBrokerMonitor.droppedTopic, "34", nowMs: 1_120_000)
        #expect(second.snapshot.dropsSeen == 30)

        // The broker restarted (its uptime is lower than the saved one) and has dropped 3 since.
        let third = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        #expect(third.snapshot.dropsSeen == 30, "drops seen are remembered")
        Self.send(third, MQTTBrokerMonitor.uptimeTopic, "10 seconds", nowMs: 4_600_000)
        Self.send(third, MQTTBrokerMonitor.droppedTopic, "3", nowMs: 4_600_000)
        #expect(third.snapshot.dropsSeen == 33)
    }

    @Test func aStepOfTheWallClockIsNotARestart() {
        let file = Self.stateFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let first = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        Self.send(first, MQTTBrokerMonitor.uptimeTopic, "100 seconds", nowMs: 1_000_000)
        Self.send(first, MQTTBrokerMonitor.droppedTopic, "40", nowMs: 1_000_000)
        // A box without a real-time clock: its clock jumped a day ahead meanwhile.
        let second = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        Self.send(second, MQTTBrokerMonitor.uptimeTopic, "400 seconds", nowMs: 87_400_000)
        Self.send(second, MQTTBrokerMonitor.droppedTopic, "40", nowMs: 87_400_000)
        #expect(second.snapshot.dropsSeen == 0, "the same 40 drops counted again as new")
    }

    @Test func aCountThatWentDownMeansTheBrokerRestarted() {
        let monitor = MQTTBrokerMonitor(brokerName: "t", stateFile: nil, logger: mqttTestLogger)
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "50")
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "2")
        #expect(monitor.snapshot.dropsSeen == 2)
    }

    @Test func aDamagedStateFileStartsOver() throws {
        let file = Self.stateFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "garbage\n".write(toFile: file, atomically: true, encoding: .utf8)
        let monitor = MQTTBrokerMonitor(brokerName: "t", stateFile: file, logger: mqttTestLogger)
        Self.send(monitor, MQTTBrokerMonitor.droppedTopic, "8")
        #expect(monitor.snapshot.dropsSeen == 0 && monitor.snapshot.droppedMessages == 8)
    }
}
