import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import EdgeLogStreams

/// A processor run from the log, crashed again and again at the points where a crash leaves
/// work half done (a commit durable but no output appended, some output partitions appended,
/// a snapshot half replaced), each time starting over from what is on disk: its output topics
/// end up holding exactly what a run without a crash writes, record for record.
///
/// The crashes here are in-process (the runner fails and recovers from disk, the page cache
/// kept, as after a kill -9); the daemon's golden-run test kills the process and cuts power.
@Suite(.serialized) struct ProcessorRunnerTests {
    static let logger = Logger(label: "test")

    struct Scenario: Sendable, CustomStringConvertible {
        var name: String
        var query: String
        var inputPartitions: Int32
        var outputPartitions: Int32 = 1
        var description: String { name }
    }

    static let scenarios = [
        Scenario(
            name: "tumbling, late aside, dead letters",
            query: """
                CREATE STREAM agg WITH (OUT_OF_ORDER = '3 SECONDS', LATE_TOPIC = 'agg_late', MAX_FUTURE = '1 HOUR') AS
                SELECT key, count(*) AS n, avg(t) AS mean, last(t) AS l, percentile(t, 0.5) AS p50
                FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY key EMIT FINAL
                """,
            inputPartitions: 1),
        Scenario(
            name: "sessions, emit changes, two partitions",
            query: "CREATE STREAM sess WITH (OUT_OF_ORDER = '5 SECONDS') AS SELECT key, count(*) AS n, max(t) AS hi FROM sensors WINDOW SESSION (3 SECONDS) GROUP BY key EMIT CHANGES",
            inputPartitions: 2),
        Scenario(
            name: "filter re-keyed into three partitions",
            query: "CREATE STREAM hot AS SELECT key, t, t * 10 AS scaled FROM sensors WHERE t > 8 PARTITION BY concat('site-', key)",
            inputPartitions: 2, outputPartitions: 3),
    ]

    static let baseTime: Int64 = 1_700_000_000_000

    /// 400 readings of 5 keys, out of order, some late, one from the far future.
    static func fill(_ manager: LogManager, partitions: Int32) throws {
        let topic = try manager.createTopic("sensors", partitions: partitions)
        var random = SplitMix(seed: 42)
        for index in 0..<400 {
            var time = baseTime + Int64(index) * 500 - Int64(random.next() % 2_500)
            if random.next() % 30 == 0 { time -= 12_000 }
            if index == 200 { time = baseTime + 86_400_000 * 365 }
            let key = "k\(random.next() % 5)"
            let record = Record(
                timestamp: time, key: ByteBuffer(string: key), value: ByteBuffer(string: #"{"t": \#(random.next() % 15)}"#))
            _ = try topic.partition(Int32(random.next() % Int(partitions))).appendAndWait([record])
        }
    }

    static func open(_ directory: String) throws -> LogManager {
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        configuration.defaults.flush = .interval(milliseconds: 1_000)
        return try LogManager.open(configuration, logger: logger).0
    }

    /// Runs until every input is processed and the status says so, then stops it.
    static func runUntilCaughtUp(_ runner: ProcessorRunner, inputs: Int) async throws {
        let task = Task { await runner.run() }
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            let status = runner.status
            if status.phase == .running && status.lagRecords == 0 && status.positions.count == inputs { break }
            guard ContinuousClock.now < deadline else {
                Issue.record("the processor did not catch up: \(status)")
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        task.cancel()
        await task.value
    }

    /// Every record of the processor's output topics, by topic and partition.
    static func outputs(_ manager: LogManager, _ plan: ProcessorPlan) throws -> [String: [[String]]] {
        var result: [String: [[String]]] = [:]
        for name in plan.outputTopics + ["agg_late"] {
            guard let topic = manager.topic(name) else { continue }
            result[name] = try topic.partitions.map { log in
                try log.readRecords(from: 0, maxBytes: 64 << 20, compressor: BatchCompressor()).map { record in
                    let key = record.key.map { String(buffer: $0) } ?? "-"
                    let value = record.value.map { String(buffer: $0) } ?? "-"
                    let headers = record.headers.map { "\($0.key)=\($0.value.map { String(buffer: $0) } ?? "")" }.joined(separator: ",")
                    return "\(record.timestamp) \(key) \(value) \(headers)"
                }
            }
        }
        return result
    }

    /// Where two runs' outputs first differ, briefly; nil when they are the same.
    static func firstDifference(_ actual: [String: [[String]]], _ expected: [String: [[String]]]) -> String? {
        for topic in Set(actual.keys).union(expected.keys).sorted() {
            let a = actual[topic] ?? []
            let e = expected[topic] ?? []
            for partition in 0..<max(a.count, e.count) {
                let ap = partition < a.count ? a[partition] : []
                let ep = partition < e.count ? e[partition] : []
                if ap == ep { continue }
                let index = (0..<min(ap.count, ep.count)).first { ap[$0] != ep[$0] } ?? min(ap.count, ep.count)
                return "\(topic)-\(partition): \(ap.count) records, expected \(ep.count); first difference at \(index): "
                    + "\(index < ap.count ? ap[index] : "none") instead of \(index < ep.count ? ep[index] : "none")"
            }
        }
        return nil
    }

    static func tuning(crashes: (@Sendable (ProcessorRunner.CrashPoint) -> Bool)?) -> ProcessorRunner.Tuning {
        var tuning = ProcessorRunner.Tuning()
        tuning.cycleRecords = 7
        tuning.snapshotRecords = 60
        tuning.snapshotIntervalMs = 0
        tuning.retryBackoffMs = 0
        tuning.pollMs = 20
        tuning.crashAt = crashes
        return tuning
    }

    /// The run without crashes: the reference.
    static func reference(_ scenario: Scenario) async throws -> [String: [[String]]] {
        let directory = NSTemporaryDirectory() + "edgelog-streams-reference-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manager = try open(directory)
        defer { manager.close() }
        try fill(manager, partitions: scenario.inputPartitions)
        let plan = try ProcessorPlan.make(scenario.query)
        if scenario.outputPartitions > 1 { _ = try manager.createTopic(plan.outputTopic, partitions: scenario.outputPartitions) }
        var tuning = tuning(crashes: nil)
        tuning.crashAt = { _ in false }  // the same sequential appends as the crashing run
        let runner = ProcessorRunner(plan: plan, manager: manager, tuning: tuning, logger: logger, wallClock: { baseTime + 10_000 })
        try await runUntilCaughtUp(runner, inputs: Int(scenario.inputPartitions))
        return try outputs(manager, plan)
    }

    @Test(arguments: scenarios)
    func crashesAtEveryKindOfPointChangeNothingInTheOutput(_ scenario: Scenario) async throws {
        let expected = try await Self.reference(scenario)
        #expect(expected[try ProcessorPlan.make(scenario.query).outputTopic]?.joined().isEmpty == false)

        let directory = NSTemporaryDirectory() + "edgelog-streams-crash-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manager = try Self.open(directory)
        defer { manager.close() }
        try Self.fill(manager, partitions: scenario.inputPartitions)
        let plan = try ProcessorPlan.make(scenario.query)
        if scenario.outputPartitions > 1 { _ = try manager.createTopic(plan.outputTopic, partitions: scenario.outputPartitions) }

        // Crashes at random points (seeded), at most 60, then a clean run to the end.
        let crashes = Mutex((random: SplitMix(seed: 7), count: [ProcessorRunner.CrashPoint: Int]()))
        let crashy = ProcessorRunner(
            plan: plan, manager: manager,
            tuning: Self.tuning(crashes: { point in
                crashes.withLock { state in
                    guard state.count.values.reduce(0, +) < 60, state.random.next() % 4 == 0 else { return false }
                    state.count[point, default: 0] += 1
                    return true
                }
            }), logger: Self.logger, wallClock: { Self.baseTime + 10_000 })
        try await Self.runUntilCaughtUp(crashy, inputs: Int(scenario.inputPartitions))
        let restart = ProcessorRunner(
            plan: plan, manager: manager, tuning: Self.tuning(crashes: { _ in false }), logger: Self.logger,
            wallClock: { Self.baseTime + 10_000 })
        try await Self.runUntilCaughtUp(restart, inputs: Int(scenario.inputPartitions))

        let counts = crashes.withLock { $0.count }
        #expect((counts[.afterCommit] ?? 0) > 0, "\(counts)")
        #expect((counts[.midSnapshot] ?? 0) > 0, "\(counts)")
        let actual = try Self.outputs(manager, plan)
        #expect(Self.firstDifference(actual, expected) == nil, "\(scenario): crashes \(counts)")
        #expect(crashy.status.replayMismatches == 0)
        #expect(restart.status.replayMismatches == 0)
        print("\(scenario): \(counts), outputs \(actual.mapValues { $0.map(\.count) })")
    }

    @Test func aSingleInputRunEqualsTheEngineFedDirectly() async throws {
        let scenario = Self.scenarios[0]
        let expected = try await Self.reference(scenario)
        let plan = try ProcessorPlan.make(scenario.query)
        let directory = NSTemporaryDirectory() + "edgelog-streams-direct-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manager = try Self.open(directory)
        defer { manager.close() }
        try Self.fill(manager, partitions: 1)
        let processor = StreamProcessor(plan: plan)
        processor.registerInput(topic: "sensors", partition: 0)
        var outputs: [StreamOutput] = []
        for record in try manager.partition(topic: "sensors", 0).readRecords(from: 0, maxBytes: 64 << 20, compressor: BatchCompressor()) {
            _ = processor.process(ProcessorRunner.streamRecord(record, .init(topic: "sensors", partition: 0)), wallClockMs: Self.baseTime + 10_000, into: &outputs)
        }
        let direct = outputs.filter { $0.destination == .output }.map { output in
            "\(output.timestampMs) \(output.key.map { String(decoding: $0, as: UTF8.self) } ?? "-") \(output.value.map { String(decoding: $0, as: UTF8.self) } ?? "-") "
        }
        #expect(expected[plan.outputTopic]?[0] == direct)
        #expect(processor.metrics.deadLettered == 1, "the reading from next year")
        #expect(expected[plan.deadLetterTopic]?[0].count == 1)
        #expect(processor.metrics.lateToSideTopic > 0)
        #expect(expected["agg_late"]?[0].count == Int(processor.metrics.lateToSideTopic))
    }

    @Test func aDamagedSnapshotFallsBackToThePreviousOne() async throws {
        let scenario = Self.scenarios[0]
        let expected = try await Self.reference(scenario)
        let plan = try ProcessorPlan.make(scenario.query)
        let directory = NSTemporaryDirectory() + "edgelog-streams-damaged-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manager = try Self.open(directory)
        defer { manager.close() }
        try Self.fill(manager, partitions: 1)
        // Stop half way: crash at the 10th commit, then damage the newest snapshot.
        let commits = Atomic(0)
        let first = ProcessorRunner(
            plan: plan, manager: manager,
            tuning: Self.tuning(crashes: { point in point == .afterCommit && commits.add(1, ordering: .relaxed).newValue == 10 }),
            logger: Self.logger, wallClock: { Self.baseTime + 10_000 })
        let task = Task { await first.run() }
        while commits.load(ordering: .relaxed) < 10 { try await Task.sleep(for: .milliseconds(2)) }
        task.cancel()
        await task.value
        let path = directory + "/.streams/agg/snapshot"
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(FileManager.default.fileExists(atPath: directory + "/.streams/agg/snapshot.previous"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))

        let second = ProcessorRunner(
            plan: plan, manager: manager, tuning: Self.tuning(crashes: { _ in false }), logger: Self.logger,
            wallClock: { Self.baseTime + 10_000 })
        try await Self.runUntilCaughtUp(second, inputs: 1)
        #expect(Self.firstDifference(try Self.outputs(manager, plan), expected) == nil)
        #expect(second.status.replayMismatches == 0)
    }
}
