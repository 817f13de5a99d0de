@testable import EdgeLogServer
import Foundation
import Synchronization
import Testing
@testable import EdgeLogMQTT

/// The libmosquitto wrapper on its own: reconnecting, stopping, and what `.refuse` does to the
/// PUBACK.
@Suite struct MQTTClientTests {
    /// Events and payloads seen by a client's handlers.
    final class Recorder: Sendable {
        let events = Mutex<[MQTTClient.Event]>([])
        let payloads = Mutex<[String]>([])
        /// How many deliveries to refuse first.
        let refusals: Mutex<Int>

        init(refusals: Int = 0) { self.refusals = Mutex(refusals) }

        func client(
            port: Int, clientId: String, subscriptions: [String], reconnectDelayMinMs: Int = 100, tlsCAFile: String? = nil
        ) throws -> MQTTClient {
            var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: port, clientId: clientId)
            configuration.tlsCAFile = tlsCAFile
            configuration.subscriptions = subscriptions
            configuration.keepaliveSeconds = 10
            configuration.reconnectDelayMinMs = reconnectDelayMinMs
            configuration.reconnectDelayMaxMs = max(reconnectDelayMinMs, 1_000)
            return try MQTTClient(
                configuration: configuration, logger: mqttTestLogger,
                onMessage: { message in
                    self.payloads.withLock { $0.append(String(decoding: message.payload, as: UTF8.self)) }
                    return self.refusals.withLock { left in
                        guard left > 0 else { return .acknowledge }
                        left -= 1
                        return .refuse
                    }
                },
                onEvent: { event in self.events.withLock { $0.append(event) } })
        }

        var subscribedCount: Int { events.withLock { $0.filter { $0 == .subscribed }.count } }

        /// The connection's life (connected, subscribed, disconnected), without the failed attempts.
        var connectionEvents: [MQTTClient.Event] {
            events.withLock { $0.filter { if case .connectFailed = $0 { false } else { true } } }
        }

        /// Why the attempts failed, in order.
        var failures: [String] {
            events.withLock { $0.compactMap { if case .connectFailed(let reason) = $0 { reason } else { nil } } }
        }
    }

    @Test func stopDoesNotWaitOutTheReconnectDelay() async throws {
        // Nothing listens on the port; the second attempt would come only after 60 s.
        let port = try MQTTTestBroker.freePort()
        let recorder = Recorder()
        let client = try recorder.client(port: port, clientId: "stop-test", subscriptions: ["a/#"], reconnectDelayMinMs: 60_000)
        client.start()
        try await Task.sleep(for: .milliseconds(200))
        let stopped = Atomic<Bool>(false)
        let stopping = Task {
            await client.stop()
            stopped.store(true, ordering: .relaxed)
        }
        try await mqttEventually("stop() to return", timeout: .seconds(5)) { stopped.load(ordering: .relaxed) }
        await stopping.value
        #expect(recorder.connectionEvents.isEmpty)
        #expect(recorder.failures.count == 1 && recorder.failures[0].contains("Connection refused"), "one attempt, and why it failed")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"))
    func aClientStartedBeforeTheBrokerConnectsOnceItIsUp() async throws {
        let broker = try MQTTTestBroker(start: false)
        let recorder = Recorder()
        let client = try recorder.client(port: broker.port, clientId: "early-client", subscriptions: ["a/#"])
        client.start()
        try await Task.sleep(for: .milliseconds(300))
        try broker.start()
        try await mqttEventually("the subscription") { recorder.subscribedCount == 1 }
        try broker.publish("a/b", "hello")
        try await mqttEventually("the message") { recorder.payloads.withLock { $0 } == ["hello"] }
        await client.stop()
        #expect(recorder.connectionEvents == [.connected(sessionPresent: false), .subscribed, .disconnected])
        #expect(recorder.failures.allSatisfy { $0.contains("Connection refused") }, "the attempts before the broker was up")
        // A clean DISCONNECT, not a dropped connection.
        try await mqttEventually("the broker to see the DISCONNECT") { broker.log.contains("Client early-client disconnected.") }
    }

    /// The behaviour `ack = durable` rests on: a refused message's PUBACK never reaches the
    /// broker, which delivers it again (DUP set) once the client is back.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"))
    func aRefusedMessageIsDeliveredAgainAfterTheReconnect() async throws {
        let broker = try MQTTTestBroker()
        let recorder = Recorder(refusals: 2)
        let client = try recorder.client(port: broker.port, clientId: "refusing-client", subscriptions: ["a/#"])
        client.start()
        try await mqttEventually("the subscription") { recorder.subscribedCount == 1 }
        try broker.publish("a/b", "one")
        try broker.publish("a/b", "two")
        try await mqttEventually("both messages, the first one three times") {
            recorder.payloads.withLock { $0 }.suffix(2) == ["one", "two"] && recorder.payloads.withLock { $0 }.count >= 4
        }
        await client.stop()
        let payloads = recorder.payloads.withLock { $0 }
        // "two" may have arrived on a refused connection too (then it was refused as well);
        // what counts: "one" came three times and was acknowledged last.
        #expect(payloads.filter { $0 == "one" }.count == 3)
        #expect(payloads.last == "two")
        let events = recorder.events.withLock { $0 }
        #expect(events.first == .connected(sessionPresent: false))
        #expect(events.filter { $0 == .connected(sessionPresent: true) }.count == 2)
        #expect(broker.log.contains("Sending PUBLISH to refusing-client (d1, q1"))
    }

    /// Over TLS (server certificate checked against the CA, host name included), a refusal
    /// drops the connection the same way and the client recovers from the TLS error it causes.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"))
    func overTLSTooARefusedMessageComesBack() async throws {
        let broker = try MQTTTestBroker(tls: true)
        let recorder = Recorder(refusals: 1)
        let client = try recorder.client(
            port: broker.port, clientId: "tls-client", subscriptions: ["a/#"], tlsCAFile: broker.tlsCAFile)
        client.start()
        try await mqttEventually("the subscription") { recorder.subscribedCount == 1 }
        try broker.publish("a/b", "secret")
        try await mqttEventually("the message twice") { recorder.payloads.withLock { $0 } == ["secret", "secret"] }
        try broker.publish("a/b", "after")
        try await mqttEventually("the next message") { recorder.payloads.withLock { $0 }.last == "after" }
        await client.stop()
        #expect(broker.log.contains("Sending PUBLISH to tls-client (d1, q1"))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"))
    func aBrokerCertificateFromAnotherCAIsNotTrusted() async throws {
        let broker = try MQTTTestBroker(tls: true)
        let other = try MQTTTestBroker(start: false, tls: true)
        let recorder = Recorder()
        let client = try recorder.client(
            port: broker.port, clientId: "tls-mistrust", subscriptions: ["a/#"], tlsCAFile: other.tlsCAFile)
        client.start()
        try await mqttEventually("a failed handshake in the broker log") { broker.log.contains("OpenSSL Error") || broker.log.contains("Client <unknown> disconnected") || broker.log.contains("Socket error on client <unknown>") }
        await client.stop()
        #expect(recorder.connectionEvents.isEmpty)
        #expect(!recorder.failures.isEmpty && recorder.failures.allSatisfy { $0.contains("TLS") }, "each attempt fails with a TLS error")
    }
}
