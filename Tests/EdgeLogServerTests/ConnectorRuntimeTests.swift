import Foundation
import Logging
import Synchronization
import Testing

@testable import EdgeLogConnect
@testable import EdgeLogCore

/// The connector runtime's supervision, with a connector family made for the test whose task
/// fails a given number of times (the real families are tested against mosquitto and Tansu in
/// DaemonProcessConnectorTests): restarts with capped exponential backoff, the states it
/// reports meanwhile, and what is persisted.
@Suite struct ConnectorRuntimeTests {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Tasks that throw at start while `failuresLeft` > 0, then run until cancelled.
    final class FlakyFamily: ConnectorFamily {
        let failuresLeft: Mutex<Int>
        let starts = Mutex<[ContinuousClock.Instant]>([])
        let running = Atomic<Int>(0)

        init(failures: Int) { failuresLeft = Mutex(failures) }

        var type: ConnectorType { .httpSource }

        func makeTask(_ spec: ConnectorSpec) throws -> any ConnectorTask { FlakyTask(family: self) }
    }

    struct FlakyTask: ConnectorTask {
        let family: FlakyFamily

        func run() async throws {
            family.starts.withLock { $0.append(.now) }
            let fails = family.failuresLeft.withLock { left -> Bool in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fails { throw Failure(description: "the peer refused us") }
            family.running.add(1, ordering: .relaxed)
            defer { family.running.subtract(1, ordering: .relaxed) }
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        }

        func health() -> ConnectorHealth { ConnectorHealth() }
        func counters() -> ConnectorCounters { ConnectorCounters() }
    }

    static func runtime(_ family: FlakyFamily, directory: String) -> ConnectorRuntime {
        var tuning = ConnectorRuntime.Tuning()
        tuning.restartBackoffMinMs = 100
        tuning.restartBackoffMaxMs = 400
        tuning.startGraceMs = 200
        return ConnectorRuntime(
            families: [family], fileConnectors: [], dataDirectory: directory, workerId: "test", tuning: tuning,
            logger: Logger(label: "test"))
    }

    static let flakyConfig = ConnectorConfig(entries: [
        .init(key: "connector.class", value: .string("http-source")), .init(key: "topic", value: .string("t")),
    ])

    @Test func aFailingTaskIsRestartedWithCappedBackoffAndReportedFailedMeanwhile() async throws {
        let directory = NSTemporaryDirectory() + "edgelog-connect-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let family = FlakyFamily(failures: 4)
        let runtime = Self.runtime(family, directory: directory)
        let running = Task { try await runtime.run() }
        try await mqttEventually("the runtime running") { runtime.registry.withLock { $0.running } }
        try runtime.create(name: "flaky", config: Self.flakyConfig)

        var seen: Set<ConnectorState> = []
        var delays: Set<Int64> = []
        try await mqttEventually("RUNNING after four failures") {
            let status = try runtime.status("flaky")
            seen.insert(status.state)
            if status.state == .failed {
                #expect(status.error == "the peer refused us" && status.errorAtMs != nil && status.nextRetryAtMs != nil)
                if let next = status.nextRetryAtMs, let at = status.errorAtMs { delays.insert(next - at) }
            }
            return status.state == .running
        }
        // Never RUNNING before the fifth task: each failed within the start grace. (Negative
        // control: with a task reported RUNNING as soon as it is made, this saw RUNNING after
        // the second start.)
        #expect(seen.contains(.failed) && family.starts.withLock { $0.count } == 5)
        let status = try runtime.status("flaky")
        #expect(status.restarts == 4 && family.running.load(ordering: .relaxed) == 1)
        // Backoff 100, 200, 400, 400 ms (capped): the gaps between starts at least that.
        let starts = family.starts.withLock { $0 }
        #expect(starts.count == 5)
        let gaps = zip(starts, starts.dropFirst()).map { ($1 - $0) }
        for (gap, floor) in zip(gaps, [100, 200, 400, 400]) { #expect(gap >= .milliseconds(floor), "gap \(gap), backoff \(floor) ms") }
        // The delays scheduled, as far as the polling saw them: never above the cap.
        #expect(!delays.isEmpty && delays.allSatisfy { $0 <= 401 }, "capped at 400 ms: \(delays)")

        // Paused: the task stops; the target state is persisted.
        try runtime.pause("flaky")
        try await mqttEventually("PAUSED") { try runtime.status("flaky").state == .paused && family.running.load(ordering: .relaxed) == 0 }
        running.cancel()
        try await running.value

        // A new runtime over the same data directory finds the connector, still paused.
        let again = Self.runtime(FlakyFamily(failures: 0), directory: directory)
        #expect(again.names == ["flaky"])
        #expect(try again.spec("flaky").origin == .api)
        let second = Task { try await again.run() }
        try await mqttEventually("PAUSED after the restart") { try again.status("flaky").state == .paused }
        try again.resume("flaky")
        try await mqttEventually("RUNNING") { try again.status("flaky").state == .running }
        second.cancel()
        try await second.value
    }

    @Test func aRestartRequestSkipsTheBackoff() async throws {
        let directory = NSTemporaryDirectory() + "edgelog-connect-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let family = FlakyFamily(failures: 1)
        var tuning = ConnectorRuntime.Tuning()
        tuning.restartBackoffMinMs = 60_000
        tuning.startGraceMs = 200
        let runtime = ConnectorRuntime(
            families: [family], fileConnectors: [], dataDirectory: directory, workerId: "test", tuning: tuning,
            logger: Logger(label: "test"))
        let running = Task { try await runtime.run() }
        defer { running.cancel() }
        try await mqttEventually("the runtime running") { runtime.registry.withLock { $0.running } }
        try runtime.create(name: "flaky", config: Self.flakyConfig)
        try await mqttEventually("FAILED, a minute to wait") { try runtime.status("flaky").state == .failed }
        #expect(try runtime.restart("flaky"))
        try await mqttEventually("RUNNING at once") { try runtime.status("flaky").state == .running }
    }
}
