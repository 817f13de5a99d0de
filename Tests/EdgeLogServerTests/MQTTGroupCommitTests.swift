@testable import EdgeLogServer
import EdgeLogStorage
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import EdgeLogCore
@testable import EdgeLogMQTT

/// `ack = durable` in groups against a real mosquitto: one commit per group of what the socket
/// held, the broker's window set by the Receive Maximum, keepalive through a slow commit, and
/// the broker's `$SYS` drop counter.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"), .serialized)
struct MQTTGroupCommitTests {
    static func service(
        _ broker: MQTTTestBroker, sink: any MQTTRecordSink, receiveMaximum: Int = 1_000, keepaliveSeconds: Int = 10,
        stateDirectory: String? = nil
    ) throws -> MQTTIngestService {
        var configuration = EdgelogConfig.Broker(name: "test")
        configuration.port = broker.port
        configuration.clientId = "edgelog-test"
        configuration.keepaliveSeconds = keepaliveSeconds
        configuration.receiveMaximum = receiveMaximum
        return MQTTIngestService(
            broker: configuration, routes: try MQTTIngestServiceTests.sensorRoutes(), sink: sink,
            stateDirectory: stateDirectory, logger: mqttTestLogger, tuning: MQTTIngestServiceTests.fastTuning)
    }

    @Test func messagesThatArriveDuringACommitShareTheNextCommit() async throws {
        let broker = try MQTTTestBroker()
        let log = try MQTTTestLog()
        // 20 ms per commit, and a publisher with 1000 messages in flight: far more than one
        // message arrives per commit.
        let sink = RecordingSink(log.ingestor, delay: .milliseconds(20))
        let service = try Self.service(broker, sink: sink)
        try await MQTTIngestServiceTests.running(service) {
            let publisher = try broker.startWindowedPublisher("sensors/s/d/v", count: 2000)
            await publisher.exited()
            #expect(publisher.terminationStatus == 0)
            try await mqttEventually("2000 records") { service.statistics.stored == 2000 }
        }
        let sequences = try log.values("sensors").map { value in Int(value.drop { !$0.isNumber }.prefix { $0.isNumber }) }
        #expect(sequences == (0..<2000).map { $0 }, "each message once, in order")
        let appends = sink.sizes.withLock { $0 }
        #expect(appends.count == service.statistics.groups)
        #expect(appends.count <= 200, "\(appends.count) commits for 2000 messages: not grouped")
        #expect(appends.max()! > 20)
    }

    @Test func theReceiveMaximumIsTheBrokersWindowAndSoTheLargestGroup() async throws {
        let broker = try MQTTTestBroker()
        let log = try MQTTTestLog()
        let sink = RecordingSink(log.ingestor, holdFirst: true)
        let service = try Self.service(broker, sink: sink, receiveMaximum: 50)
        let lines = (0..<200).map { "w\($0)" }
        try await MQTTIngestServiceTests.running(service) {
            // mosquitto_pub returns once the broker acknowledged its last message, and the broker
            // queues for edgelog before it acknowledges: by then it has sent edgelog the first
            // group (held) and what fills the window behind it.
            try broker.publish("sensors/s/d/v", lines: lines)
            try await mqttEventually("the first append") { sink.sizes.withLock { $0.count } == 1 }
            // The broker has sent a window's worth and heard no PUBACK: the first group is held
            // (not committed), the rest is unread behind it.
            let sent = broker.log.components(separatedBy: "Sending PUBLISH to edgelog-test (d0, q1").count - 1
            #expect(!broker.log.contains("Received PUBACK from edgelog-test"), "a PUBACK before the commit")
            #expect((50...51).contains(sent), "the broker sent \(sent) messages, not its window of 50")
            sink.release()
            try await mqttEventually("200 records") { service.statistics.stored == 200 }
        }
        let sizes = sink.sizes.withLock { $0 }
        #expect(sizes.allSatisfy { $0 <= 50 }, "\(sizes)")
        // While the first group is held, the broker fills its window behind it, so the first two
        // groups make about a whole window (seen with mosquitto 2.0.11: [1, 50, 50, 50, 49] and,
        // on a loaded machine, [20, 32, 50, 50, 48]; with libmosquitto's default Receive Maximum
        // they would make about 20).
        #expect(sizes.count >= 2 && sizes[0] + sizes[1] >= 49, "the broker did not fill a window of 50: \(sizes)")
        #expect(try log.values("sensors") == lines)
    }

    @Test func aCommitLongerThanTheKeepaliveKeepsTheConnection() async throws {
        let broker = try MQTTTestBroker()
        let log = try MQTTTestLog()
        // The broker drops a client silent for 1.5 x keepalive (7.5 s), checking every 6 s
        // (mosquitto 2.0.11 src/keepalive.c), so by 13.5 s at the latest; this commit takes
        // 15 s. (Without the pings the broker drops the connection and delivers the message
        // again: checked by disabling them.)
        let sink = RecordingSink(log.ingestor, delay: .seconds(15), delayedAppends: 1)
        let service = try Self.service(broker, sink: sink, keepaliveSeconds: 5)
        try await MQTTIngestServiceTests.running(service) {
            try broker.publish("sensors/s/d/v", "slow")
            try await mqttEventually("the slow record", timeout: .seconds(30)) { try log.values("sensors") == ["slow"] }
            try broker.publish("sensors/s/d/v", "next")
            try await mqttEventually("the next record") { try log.values("sensors") == ["slow", "next"] }
        }
        #expect(!broker.log.contains("exceeded timeout"), "the broker dropped the connection during the commit")
        #expect(broker.log.components(separatedBy: "Received PINGREQ from edgelog-test").count - 1 >= 2)
        #expect(sink.sizes.withLock { $0 } == [1, 1], "not delivered twice")
    }
}

/// Appends to the real log and records the size of every append; optionally slow, or holding
/// the first append until `release()`.
final class RecordingSink: MQTTRecordSink, Sendable {
    let target: any MQTTRecordSink
    let delay: Duration
    let delayedAppends: Int
    let sizes = Mutex<[Int]>([])
    private let gate: Mutex<CheckedContinuation<Void, Never>?> = Mutex(nil)
    private let released = Atomic<Bool>(false)
    private let holdFirst: Bool

    init(_ target: any MQTTRecordSink, delay: Duration = .zero, delayedAppends: Int = .max, holdFirst: Bool = false) {
        self.target = target
        self.delay = delay
        self.delayedAppends = delayedAppends
        self.holdFirst = holdFirst
    }

    func release() {
        released.store(true, ordering: .relaxed)
        gate.withLock { $0 }?.resume()
    }

    func append(topic: String, records: [Record]) async throws(IngestError) -> [RecordPosition] {
        let index = sizes.withLock { sizes in
            sizes.append(records.count)
            return sizes.count - 1
        }
        if holdFirst && index == 0 && !released.load(ordering: .relaxed) {
            await withCheckedContinuation { continuation in
                let resumeNow = gate.withLock { gate in
                    if released.load(ordering: .relaxed) { return true }
                    gate = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        if delay > .zero && index < delayedAppends { try? await Task.sleep(for: delay) }
        return try await target.append(topic: topic, records: records)
    }
}
