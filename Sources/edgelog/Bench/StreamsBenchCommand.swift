import ArgumentParser
import EdgeLogStorage
import EdgeLogStreams
import Foundation
import Synchronization

/// `edgelog bench streams`: stream processors run from the log (issue 15's targets), each
/// against a reference from the same run: the input's own rate, the log's read-then-append
/// rate, the state bound.
struct StreamsBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams", abstract: "Measure stream processors: downsampling, a stateless filter, the key bound, restarts.")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "Seconds of event time of the downsampling input (10,000 keys at 5 readings/s).")
    var seconds = 75

    @Option(help: "Records of the stateless filter's input.")
    var filterRecords = 1_000_000

    @Option(help: "New keys of the key-bound run (within one minute of event time).")
    var newKeys = 1_000_000

    @Option(help: "Megabytes of input (100-byte readings of 10,000 keys) under the restart run.")
    var restartMegabytes = 1024

    @Option(help: "Run one benchmark only: downsample, filter, keys or restart.")
    var only: String?

    func runs(_ name: String) -> Bool { only == nil || only == name }

    static let downsample = """
        CREATE STREAM per_minute WITH (OUT_OF_ORDER = '1 SECOND', IDLE_TIMEOUT = '1 HOUR') AS
        SELECT key AS device, avg($.temp_c) AS avg_t, min($.temp_c) AS min_t, max($.temp_c) AS max_t, count(*) AS n, last($.temp_c) AS last_t
        FROM readings WINDOW TUMBLING (SIZE 60 SECONDS, GRACE PERIOD 10 SECONDS) GROUP BY key EMIT FINAL
        """

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bench = StreamsBenchmarks(directory: directory)
        var report = BenchResult.Report()
        let mb = 1_048_576.0

        // Downsampling: 10,000 keys, 5 readings/s each, 60 s windows with 10 s grace.
        if runs("downsample") {
            let manager = try bench.manager("downsample")
            defer { manager.close() }
            let records = 10_000 * 5 * seconds
            _ = try bench.fill(manager, topic: "readings", count: records, keys: 10_000, perKeyPerSecond: 5)
            let before = StreamsBenchmarks.residentBytes()
            let outcome = try await bench.run(Self.downsample, manager: manager, fixedClockMs: StreamsBenchmarks.baseTime + Int64(seconds) * 1000)
            let perWindow = try bench.outputsPerWindow(manager, "per_minute")
            let rate = Double(records) / outcome.seconds
            report.add(BenchResult(
                name: "downsample 10,000 keys × 5/s, 60 s tumbling, avg/min/max/count/last", value: rate, unit: "records/s",
                reference: "the input's rate", referenceValue: 50_000, target: "≥ 10",
                note: "outputs per closed window: \(perWindow.sorted { $0.key < $1.key }.map { "\($0.value)" }.joined(separator: ", ")) (want 10,000 each)"))
            report.add(BenchResult(
                name: "downsample: processor memory", value: Double(outcome.peakStateBytes) / mb, unit: "MiB of state",
                target: "< 64 MB",
                note: String(format: "resident memory grew %.1f MiB during the run", Double(outcome.peakResidentBytes - before) / mb)))
        }

        // Stateless filter and projection against the log's own read-then-append.
        if runs("filter") {
            let manager = try bench.manager("filter")
            defer { manager.close() }
            _ = try bench.fill(manager, topic: "readings", count: filterRecords, keys: 1_000, perKeyPerSecond: 5)
            let reference = Double(filterRecords) / (try await bench.readThenAppend(manager, from: "readings"))
            let outcome = try await bench.run(
                "CREATE STREAM hot WITH (IDLE_TIMEOUT = '1 HOUR') AS SELECT key, $.temp_c AS t, $.temp_c * 1.8 + 32 AS f FROM readings WHERE $.rh > 41",
                manager: manager)
            report.add(BenchResult(
                name: "stateless filter + projection of 100-byte JSON", value: Double(filterRecords) / outcome.seconds,
                unit: "records/s", reference: "read then append (fsynced) of the same records", referenceValue: reference, target: "≥ 0.5",
                note: "\(outcome.status.metrics.recordsOut) of \(filterRecords) pass"))
        }

        // A million new keys within a minute against a 50,000-key bound.
        if runs("keys") {
            let manager = try bench.manager("keys")
            defer { manager.close() }
            _ = try bench.fill(manager, topic: "readings", count: newKeys, keys: newKeys, perKeyPerSecond: max(1, newKeys / 60 / newKeys))
            let before = StreamsBenchmarks.residentBytes()
            let outcome = try await bench.run(
                """
                CREATE STREAM per_key WITH (MAX_KEYS = 50000, IDLE_TIMEOUT = '1 HOUR') AS
                SELECT key, count(*) AS n, last($.temp_c) AS t FROM readings WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY key
                """, manager: manager)
            let metrics = outcome.status.metrics
            let perKey = metrics.keys > 0 ? Double(metrics.stateBytes) / Double(metrics.keys) : 0
            report.add(BenchResult(
                name: "\(newKeys) new keys in a minute, MAX_KEYS 50,000: peak state", value: Double(outcome.peakStateBytes) / mb,
                unit: "MiB", reference: "the bound (50,000 keys at their size)", referenceValue: 50_000 * perKey / mb, target: "≤ 1.1",
                note: String(
                    format: "%lld evictions, %d keys at the end, resident memory grew %.1f MiB, %.0f records/s", metrics.evictions, metrics.keys,
                    Double(outcome.peakResidentBytes - before) / mb, Double(newKeys) / outcome.seconds)))
        }

        // Restart: 10,000 keys of state over a large input. The first run processes it all
        // and then dies as a crash would leave it: the final snapshot half written, so the
        // restart has the last periodic snapshot and the commits since to replay.
        if runs("restart") {
            let manager = try bench.manager("restart")
            defer { manager.close() }
            let records = restartMegabytes * 1_000_000 / 100
            _ = try bench.fill(manager, topic: "readings", count: records, keys: 10_000, perKeyPerSecond: 5)
            let clock = StreamsBenchmarks.baseTime + Int64(records / 50)
            let crashing = Atomic(false)
            var tuning = ProcessorRunner.Tuning()
            tuning.crashAt = { _ in crashing.load(ordering: .relaxed) }
            let first = try await bench.run(Self.downsample, manager: manager, tuning: tuning, fixedClockMs: clock, beforeStop: {
                crashing.store(true, ordering: .relaxed)
            })
            let snapshotOffset = try ProcessorSnapshot.read(from: directory + "/restart/.streams/per_minute/snapshot.previous")?
                .positions.first?.nextOffset ?? 0
            let second = try await bench.run(Self.downsample, manager: manager, fixedClockMs: clock)
            report.add(BenchResult(
                name: "restart with \(second.status.metrics.keys) keys of state over \(restartMegabytes) MB of input",
                value: (second.status.recoveryMs ?? 0) / 1000, unit: "s", target: "≤ 2 s",
                note: String(
                    format: "snapshot %d bytes; replayed %lld commits, %lld records; the input processed at %.0f records/s",
                    second.status.lastSnapshotBytes, second.status.replayedCommits, Int64(records) - snapshotOffset,
                    Double(records) / first.seconds)))
        }
        report.printTable()
    }
}
