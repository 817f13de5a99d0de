import ArgumentParser
import EdgeLogStorage
import Foundation

/// `edgelog bench`: the storage engine's speed, each number next to a reference measured in
/// the same run on the same machine (these machines are shared and noisy). Build with
/// `swift build -c release` first; debug builds are several times slower.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, each against a reference measured in the same run (see BENCHMARKS.md).",
        subcommands: [
            StorageBenchCommand.self, IngestBenchCommand.self, ReplicationBenchCommand.self, KafkaBenchCommand.self,
            FetchIdleBenchCommand.self, StreamsBenchCommand.self,
        ],
        defaultSubcommand: StorageBenchCommand.self)
}

/// `edgelog bench storage`.
struct StorageBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Measure the storage engine against dd, gzip -1 and the disk's fsync rate.")

    @Option(help: "Directory for benchmark data (same file system as the real data directory).")
    var directory = "./bench-data"

    @Option(help: "Megabytes of records per throughput benchmark.")
    var megabytes = 512

    @Option(help: "Megabytes in the log for the reopen benchmark.")
    var reopenMegabytes = 1024

    @Option(help: "Concurrent producers for the fsync=always benchmark.")
    var producers = 64

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bench = StorageBenchmarks(directory: directory)
        var report = BenchResult.Report()
        print("CRC-32C hardware acceleration: \(CRC32C.isHardwareAccelerated)")

        let dd = try References.ddWriteMBps(directory: directory, megabytes: megabytes)
        var plain = LogConfig()
        plain.codec = .none
        plain.flush = .interval(milliseconds: 1000)
        plain.segmentBytes = 256 * 1024 * 1024
        let appendPath = try bench.freshDirectory("append")
        let large = try bench.append(into: appendPath, megabytes: megabytes, config: plain, recordsPerAppend: 9000)
        report.add(BenchResult(
            name: "append, codec none, fsync=interval, 1 MiB batches", value: large.storedMBps, unit: "MB/s",
            reference: "dd bs=1M conv=fdatasync", referenceValue: dd, target: "≥ 0.7",
            note: String(format: "%.0f records/s of 100 B", large.recordsPerSecond)))
        report.add(BenchResult(
            name: "append, 100-byte records, requests of 9000", value: large.recordsPerSecond, unit: "records/s",
            target: "≥ 1,000,000"))
        let read = try bench.sequentialRead(appendPath, config: plain)
        report.add(BenchResult(
            name: "sequential read of stored batches", value: read.mbps, unit: "MB/s", reference: "dd write",
            referenceValue: dd, note: read.cold ? "page cache dropped first" : "page cache warm"))
        try? FileManager.default.removeItem(atPath: appendPath)

        let small = try bench.append(
            into: try bench.freshDirectory("append-small"), megabytes: megabytes / 4, config: plain, recordsPerAppend: 100,
            inFlight: 64)
        report.add(BenchResult(
            name: "append, 100-byte records, requests of 100", value: small.recordsPerSecond, unit: "records/s",
            target: "≥ 1,000,000"))

        // gzip: the same records, as raw bytes, through gzip -1.
        let rawPath = directory + "/gzip-reference.raw"
        let rawMegabytes = max(16, megabytes / 4)
        var raw = Data()
        let pool = StorageBenchmarks.pool
        while raw.count < rawMegabytes * 1_000_000 {
            for record in pool { raw.append(contentsOf: record.value!.readableBytesView) }
        }
        try raw.write(to: URL(fileURLWithPath: rawPath))
        let gzip = try References.gzipMBps(file: rawPath)
        try? FileManager.default.removeItem(atPath: rawPath)
        var gzipConfig = plain
        gzipConfig.codec = .gzip
        gzipConfig.compressionLevel = 1
        let gzipped = try bench.append(
            into: try bench.freshDirectory("append-gzip"), megabytes: rawMegabytes, config: gzipConfig,
            recordsPerAppend: 9000)
        report.add(BenchResult(
            name: "append, gzip level 1", value: gzipped.payloadMBps, unit: "MB/s of records",
            reference: "gzip -1 on the same bytes", referenceValue: gzip, target: "≥ 0.8",
            note: String(format: "stored %.1f%% of input", 100 * Double(gzipped.storedBytes) / Double(gzipped.records * 100))))

        let fsyncs = try References.fsyncsPerSecond(directory: directory, count: 300)
        let group = try await bench.groupCommit(producers: producers, appendsPerProducer: 300)
        report.add(BenchResult(
            name: "fsync=always, \(producers) producers, 1 record per append", value: group.recordsPerSecond,
            unit: "records/s", reference: "raw 4 KiB write + fdatasync", referenceValue: fsyncs, referenceUnit: "fsyncs/s",
            target: "≫ 1",
            note: String(format: "ack p50 %.2f ms, p99 %.2f ms, %d batches", group.p50Ms, group.p99Ms, group.batches)))

        let reopen = try bench.reopen(megabytes: reopenMegabytes, tailMegabytes: 64)
        report.add(BenchResult(
            name: "reopen after clean shutdown, \(reopenMegabytes) MB", value: reopen.clean, unit: "s", target: "< 1 s"))
        report.add(BenchResult(
            name: "reopen after a crash with an unflushed 64 MB tail", value: reopen.crashed, unit: "s",
            note: "\(reopen.scannedBytes / 1_000_000) MB scanned and CRC-checked"))

        report.printTable()
    }
}
