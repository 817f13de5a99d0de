import EdgeLogStorage
import Foundation
import Logging
import NIOCore

/// The storage engine's benchmarks. Each works in its own directory under the bench directory
/// and deletes it afterwards.
struct StorageBenchmarks {
    let directory: String
    let logger = Logger(label: "edgelog.bench")

    /// 10,000 sensor readings of about 100 bytes, as JSON, sliced from one buffer.
    static let pool: [Record] = {
        var storage = ByteBuffer()
        var ranges: [(Int, Int)] = []
        for index in 0..<10_000 {
            let start = storage.writerIndex
            let json = "{\"site\":\"s\(index % 7)\",\"device\":\"d\(String(format: "%04d", index % 500))\",\"seq\":\(index),\"temp_c\":\(20 + index % 13).\(index % 10)\(index % 7),\"rh\":\(40 + index % 17).\(index % 9)}"
            storage.writeString(json)
            storage.writeString(String(repeating: " ", count: max(0, 100 - json.utf8.count)))
            ranges.append((start, storage.writerIndex - start))
        }
        let base: Int64 = 1_764_000_000_000
        return ranges.enumerated().map { index, range in
            Record(timestamp: base + Int64(index), value: storage.getSlice(at: range.0, length: range.1))
        }
    }()

    static var payloadBytesPerRecord: Int { 100 }

    func freshDirectory(_ name: String) throws -> String {
        let path = directory + "/" + name
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func open(_ path: String, config: LogConfig) throws -> PartitionLog {
        try PartitionLog.open(topic: "bench", partition: 0, directory: path + "/bench-0", config: config, logger: logger).0
    }

    struct AppendOutcome {
        var records: Int
        var storedBytes: Int64
        var seconds: Double
        var recordsPerSecond: Double { Double(records) / seconds }
        var storedMBps: Double { Double(storedBytes) / 1e6 / seconds }
        var payloadMBps: Double { Double(records * StorageBenchmarks.payloadBytesPerRecord) / 1e6 / seconds }
    }

    /// Appends `megabytes` of 100-byte records in requests of `recordsPerAppend`, keeping
    /// `inFlight` requests queued, then closes the partition (which fsyncs); the time includes
    /// the close. Leaves the data in `path` for the read benchmark.
    func append(
        into path: String, megabytes: Int, config: LogConfig, recordsPerAppend: Int, inFlight: Int = 8
    ) throws -> AppendOutcome {
        let log = try open(path, config: config)
        let total = megabytes * 1_000_000 / Self.payloadBytesPerRecord
        let pool = Self.pool
        let window = DispatchSemaphore(value: inFlight)
        let start = Clock.now
        var sent = 0
        var cursor = 0
        while sent < total {
            let count = min(recordsPerAppend, total - sent)
            if cursor + count > pool.count { cursor = 0 }
            window.wait()
            log.append(Array(pool[cursor..<(cursor + count)])) { result in
                if case .failure(let error) = result { fatalError("append failed: \(error)") }
                window.signal()
            }
            cursor += count
            sent += count
        }
        for _ in 0..<inFlight { window.wait() }
        // libdispatch traps when a semaphore dies below its initial value.
        for _ in 0..<inFlight { window.signal() }
        log.close()
        let seconds = Clock.seconds(since: start)
        return AppendOutcome(records: total, storedBytes: log.sizeBytes, seconds: seconds)
    }

    /// Reads the partition at `path` from the start in 1 MiB reads; MB/s.
    func sequentialRead(_ path: String, config: LogConfig) throws -> (mbps: Double, cold: Bool) {
        let cold = (try? "3".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)) != nil
        let log = try open(path, config: config)
        defer { log.close() }
        var offset = log.logStartOffset
        var bytes = 0
        let start = Clock.now
        while offset < log.logEndOffset {
            let chunk = try log.read(from: offset, maxBytes: 1 << 20)
            bytes += chunk.readableBytes
            // The next offset: after the last batch in the chunk.
            var cursor = chunk
            var last: Int64 = offset
            while let size = RecordBatch.frameSize(in: cursor, at: cursor.readerIndex), let slice = cursor.readSlice(length: size) {
                last = try RecordBatch(validating: slice).nextOffset
            }
            offset = last
        }
        return (Double(bytes) / 1e6 / Clock.seconds(since: start), cold)
    }

    struct GroupCommitOutcome {
        var recordsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
        var batches: Int
    }

    /// `producers` concurrent tasks each appending single records under `flush = always`.
    func groupCommit(producers: Int, appendsPerProducer: Int) async throws -> GroupCommitOutcome {
        let path = try freshDirectory("group-commit")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var config = LogConfig()
        config.codec = .none
        config.flush = .always
        let log = try open(path, config: config)
        let pool = Self.pool
        let start = Clock.now
        let latencies = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for producer in 0..<producers {
                group.addTask {
                    var latencies: [UInt64] = []
                    latencies.reserveCapacity(appendsPerProducer)
                    for index in 0..<appendsPerProducer {
                        let record = pool[(producer * appendsPerProducer + index) % pool.count]
                        let began = Clock.now
                        _ = try await log.append([record])
                        latencies.append(Clock.now - began)
                    }
                    return latencies
                }
            }
            var all: [UInt64] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let seconds = Clock.seconds(since: start)
        var batches = 0
        var offset: Int64 = 0
        while offset < log.logEndOffset {
            var chunk = try log.read(from: offset, maxBytes: 1 << 20)
            while let size = RecordBatch.frameSize(in: chunk, at: chunk.readerIndex), let slice = chunk.readSlice(length: size) {
                batches += 1
                offset = try RecordBatch(validating: slice).nextOffset
            }
        }
        log.close()
        func percentile(_ p: Double) -> Double {
            Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1e6
        }
        return GroupCommitOutcome(
            recordsPerSecond: Double(latencies.count) / seconds, p50Ms: percentile(0.5), p99Ms: percentile(0.99),
            batches: batches)
    }

    /// Builds a log of `megabytes`, closes it, and times a reopen; then appends an unflushed
    /// tail, abandons the partition without closing it (a crash, as far as the files are
    /// concerned) and times the recovering open.
    func reopen(megabytes: Int, tailMegabytes: Int) throws -> (clean: Double, crashed: Double, scannedBytes: Int64) {
        let path = try freshDirectory("reopen")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var config = LogConfig()
        config.codec = .none
        config.flush = .interval(milliseconds: 1000)
        config.segmentBytes = 256 * 1024 * 1024
        config.checkpointIntervalMs = 24 * 3600 * 1000
        _ = try append(into: path, megabytes: megabytes, config: config, recordsPerAppend: 9000)
        var start = Clock.now
        let reopened = try open(path, config: config)
        let clean = Clock.seconds(since: start)
        // The tail: written to the OS, past the recovery point.
        let pool = Self.pool
        var remaining = tailMegabytes * 1_000_000 / Self.payloadBytesPerRecord
        while remaining > 0 {
            let count = min(9000, remaining)
            _ = try reopened.appendAndWait(Array(pool[0..<count]))
            remaining -= count
        }
        start = Clock.now
        let (crashed, report) = try PartitionLog.open(
            topic: "bench", partition: 0, directory: path + "/bench-0", config: config, logger: logger)
        let crashSeconds = Clock.seconds(since: start)
        crashed.close()
        reopened.close()
        return (clean, crashSeconds, report.bytesScanned)
    }
}
