import EdgeLogStorage
import EdgeLogStreams
import Foundation
import Logging
import NIOCore

/// The stream processors' benchmarks: a real `ProcessorRunner` (reading from the log, commits,
/// snapshots, output appends) over inputs written to a log in the bench directory.
struct StreamsBenchmarks {
    let directory: String
    let logger = Logger(label: "edgelog.bench")
    static let baseTime: Int64 = 1_764_000_000_000 - 1_764_000_000_000 % 60_000

    func manager(_ name: String) throws -> LogManager {
        let path = directory + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        var configuration = LogManager.Configuration(dataDirectory: path)
        configuration.retentionCheckIntervalMs = nil
        configuration.defaults.flush = .interval(milliseconds: 1_000)
        configuration.defaults.segmentBytes = 256 << 20
        return try LogManager.open(configuration, logger: logger).0
    }

    /// Appends `count` readings of about 100 bytes: `keys` devices in turn, each at
    /// `perKeyPerSecond` readings a second of event time (a little out of order), from
    /// `baseTime` on. Returns the seconds it took.
    func fill(_ manager: LogManager, topic: String, count: Int, keys: Int, perKeyPerSecond: Int) throws -> Double {
        let log = try manager.createTopic(topic, partitions: 1).partition(0)
        let started = Clock.now
        let interval = 1000.0 / Double(keys * perKeyPerSecond)
        let window = DispatchSemaphore(value: 8)
        let failure = FailureBox()
        var batch: [Record] = []
        batch.reserveCapacity(5_000)
        for index in 0..<count {
            let key = index % keys
            // From a second past the minute, a little out of order: the first window is whole.
            let time = Self.baseTime + 1_000 + Int64(Double(index) * interval) - Int64(index % 7) * 40
            var value = "{\"device\":\"d\(key)\",\"seq\":\(index),\"temp_c\":\(20 + index % 13).\(index % 10),\"rh\":\(40 + index % 17)"
            value += String(repeating: " ", count: max(0, 98 - value.utf8.count)) + "}"
            batch.append(Record(timestamp: time, key: ByteBuffer(string: "d\(key)"), value: ByteBuffer(string: value)))
            if batch.count == 5_000 || index == count - 1 {
                window.wait()
                log.append(batch) { result in
                    if case .failure(let error) = result { failure.set(error) }
                    window.signal()
                }
                batch.removeAll(keepingCapacity: true)
            }
        }
        for _ in 0..<8 { window.wait() }
        // libdispatch traps on freeing a semaphore below its initial value.
        for _ in 0..<8 { window.signal() }
        if let error = failure.error { throw error }
        return Clock.seconds(since: started)
    }

    struct RunOutcome {
        var seconds: Double
        var status: ProcessorStatus
        var peakResidentBytes: Int
        var peakStateBytes: Int
    }

    /// Runs `query` until it has read every input record (and its last commit is done),
    /// sampling memory meanwhile; stops it cleanly.
    func run(
        _ query: String, manager: LogManager, tuning: ProcessorRunner.Tuning = .init(), fixedClockMs: Int64? = nil,
        beforeStop: () -> Void = {}
    ) async throws -> RunOutcome {
        let plan = try StreamsRuntime.plan(query)
        let runner = ProcessorRunner(
            plan: plan, manager: manager, tuning: tuning, logger: logger, wallClock: { fixedClockMs ?? EdgeLogStorage.wallClockMs() })
        let started = Clock.now
        let task = Task { await runner.run() }
        var peakResident = 0
        var peakState = 0
        while true {
            let status = runner.status
            peakResident = max(peakResident, Self.residentBytes())
            peakState = max(peakState, status.metrics.stateBytes)
            if status.phase == .running, status.lagRecords == 0, !status.positions.isEmpty { break }
            if status.phase == .failed { throw BenchError("processor failed: \(status.lastError ?? "?")") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = Clock.seconds(since: started)
        beforeStop()
        task.cancel()
        await task.value
        return RunOutcome(seconds: seconds, status: runner.status, peakResidentBytes: peakResident, peakStateBytes: peakState)
    }

    /// The reference for stateless queries: the same records read from the log and appended
    /// unchanged to another topic, in the runner's cycle sizes, each append waited for and
    /// fsynced (as a processor's outputs are).
    func readThenAppend(_ manager: LogManager, from topic: String) async throws -> Double {
        let input = try manager.partition(topic: topic, 0)
        var config = manager.configuration.defaults
        config.flush = .always
        let output = try manager.createTopic(topic + "-copy", partitions: 1, config: config).partition(0)
        let compressor = BatchCompressor()
        let started = Clock.now
        var next: Int64 = 0
        while next < input.logEndOffset {
            let records = try input.readRecords(from: next, maxRecords: 4096, maxBytes: 1 << 20, compressor: compressor)
            guard let last = records.last else { break }
            _ = try await output.append(records.map { Record(timestamp: $0.timestamp, key: $0.key, value: $0.value, headers: $0.headers) })
            next = last.offset + 1
        }
        return Clock.seconds(since: started)
    }

    /// Resident memory of this process (/proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    /// Output records of `topic`, and how many per window start (from the key's `|start`).
    func outputsPerWindow(_ manager: LogManager, _ topic: String) throws -> [Int64: Int] {
        let log = try manager.partition(topic: topic, 0)
        var counts: [Int64: Int] = [:]
        var next: Int64 = 0
        while next < log.logEndOffset {
            let records = try log.readRecords(from: next, maxRecords: 10_000, compressor: BatchCompressor())
            guard let last = records.last else { break }
            for record in records { counts[record.timestamp, default: 0] += 1 }
            next = last.offset + 1
        }
        return counts
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?
    var error: (any Error)? { lock.withLock { stored } }
    func set(_ error: any Error) { lock.withLock { stored = error } }
}
