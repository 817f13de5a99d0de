import EdgeLogStreams
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The golden run (issue 15): stream processors in the real daemon, killed with SIGKILL at
/// random moments (while records arrive, mid-window, mid-commit, during recovery) more than
/// fifty times, and in a second test through simulated power cuts (unsynced writes dropped).
/// At the end every output topic must hold exactly what the engine gives over the same input
/// without any crash: no duplicate, no gap, record for record. The input has out-of-order,
/// late and far-future records, so the late side topic and the dead-letter topic are checked
/// too. The processors run with small cycles and frequent snapshots, so that kills land
/// between a commit and its outputs and between snapshots.
///
/// Negative control: with recovery's repair step disabled (outputs of a commit found missing
/// are not appended) both tests fail, with gaps in `flt` and `agg_late` (run on 2026-12-08;
/// `ProcessorRunnerTests` shows the same in-process). The daemon's log shows that kills fell
/// between commits and their outputs (a test-only pause there makes that common).
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)))
struct DaemonProcessStreamsTests {
    static let aggregate = """
        CREATE STREAM agg WITH (OUT_OF_ORDER = '2 SECONDS', LATE_TOPIC = 'agg_late', IDLE_TIMEOUT = '1 HOUR') AS
        SELECT key AS device, avg($.t) AS mean, min($.t) AS lo, max($.t) AS hi, count(*) AS n, last($.t) AS latest,
               stddev($.t) AS sd, percentile($.t, 0.9) AS p90
        FROM sensors WINDOW TUMBLING (SIZE 5 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY key EMIT FINAL
        """
    static let filter = """
        CREATE STREAM flt WITH (IDLE_TIMEOUT = '1 HOUR') AS SELECT key, $.t AS t, $.t * 1.8 + 32 AS f FROM sensors WHERE $.t > 70
        """

    static func config() -> String {
        """
        [[topics]]
        name = "sensors"
        partitions = 1

        [streams]
        cycle_records = 50
        snapshot_records = 1500
        snapshot_interval_ms = 300

        [[processors]]
        query = \"\"\"
        \(aggregate)
        \"\"\"

        [[processors]]
        query = \"\"\"
        \(filter)
        \"\"\"
        """
    }

    static let baseTime: Int64 = 1_700_000_000_000

    /// Request `request`'s records: 20 devices, 25 ms apart, up to 3 s out of order, one in
    /// 40 about 10 s late, one in 900 in the year 2100 (dead-lettered).
    static func body(request: Int, records: Int) -> String {
        var random = SplitMixGenerator(seed: UInt64(request) &+ 11)
        var lines: [String] = []
        for index in 0..<records {
            let sequence = request * records + index
            var time = baseTime + Int64(sequence) * 25 - Int64(random.next(upTo: 3_000))
            if random.next(upTo: 40) == 0 { time -= 10_000 }
            if random.next(upTo: 900) == 0 { time = 4_102_444_800_000 }
            lines.append(#"{"key":"dev-\#(random.next(upTo: 20))","value":{"t":\#(random.next(upTo: 100))},"timestamp":\#(time)}"#)
        }
        return lines.joined(separator: "\n")
    }

    struct StoredRecord: Equatable, CustomStringConvertible {
        var timestamp: Int64
        var key: String
        var value: String
        var headers: String
        var description: String { "\(timestamp) \(key) \(value) [\(headers)]" }
    }

    /// A dead letter's reason without how far ahead of the wall clock the record was (the
    /// daemon judged it at its clock, this test at its own).
    static func normalized(_ header: String) -> String {
        header.replacingOccurrences(of: #"event time \d+ ms ahead"#, with: "event time N ms ahead", options: .regularExpression)
    }

    /// Every record of `topic` partition 0, through the HTTP API.
    static func records(_ daemon: DaemonProcess, _ topic: String) async throws -> [StoredRecord] {
        var result: [StoredRecord] = []
        var offset = 0
        while true {
            let (status, body) = try await daemon.request(
                .GET, "/v1/topics/\(topic)/partitions/0/records?offset=\(offset)&max_records=10000&format=binary")
            if status == 404 { return result }
            guard status == 200 else { throw DaemonProcess.Failure("read \(topic): \(status) \(body)") }
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            let records = json["records"] as! [[String: Any]]
            if records.isEmpty { return result }
            for record in records {
                func decoded(_ field: String) -> String {
                    (record[field] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "-"
                }
                let headers = (record["headers"] as? [String: Any] ?? [:]).map { "\($0.key)=\(normalized($0.value as? String ?? ""))" }.sorted()
                result.append(StoredRecord(
                    timestamp: (record["timestamp"] as! NSNumber).int64Value, key: decoded("key_base64"), value: decoded("value_base64"),
                    headers: headers.joined(separator: ",")))
            }
            offset = json["next_offset"] as! Int
        }
    }

    /// What the engine emits over the stored input with no crash, by output topic.
    static func expectedOutputs(_ input: [StoredRecord]) throws -> [String: [StoredRecord]] {
        var expected: [String: [StoredRecord]] = [:]
        for query in [aggregate, filter] {
            let plan = try ProcessorPlan.make(query)
            let processor = StreamProcessor(plan: plan)
            processor.registerInput(topic: "sensors", partition: 0)
            var outputs: [StreamOutput] = []
            for (offset, record) in input.enumerated() {
                let streamRecord = StreamRecord(
                    topic: "sensors", partition: 0, offset: Int64(offset), timestampMs: record.timestamp, key: Array(record.key.utf8),
                    value: Array(record.value.utf8))
                _ = processor.process(streamRecord, wallClockMs: Int64(Date().timeIntervalSince1970 * 1000), into: &outputs)
            }
            for output in outputs {
                let topic: String
                switch output.destination {
                case .output: topic = plan.outputTopic
                case .deadLetter: topic = plan.deadLetterTopic
                case .late: topic = "agg_late"
                }
                let headers = output.headers.map { "\($0.key)=\(normalized($0.value.map { String(decoding: $0, as: UTF8.self) } ?? ""))" }.sorted()
                expected[topic, default: []].append(StoredRecord(
                    timestamp: output.timestampMs, key: output.key.map { String(decoding: $0, as: UTF8.self) } ?? "-",
                    value: output.value.map { String(decoding: $0, as: UTF8.self) } ?? "-", headers: headers.joined(separator: ",")))
            }
        }
        return expected
    }

    /// Waits until both processors have read the whole input.
    static func caughtUp(_ daemon: DaemonProcess) async throws {
        try await mqttEventually("the processors to catch up", timeout: .seconds(120)) {
            let (status, body) = try await daemon.request(.GET, "/v1/processors")
            guard status == 200, let list = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else { return false }
            return list.count == 2 && list.allSatisfy { ($0["state"] as? String) == "RUNNING" && ($0["lag_records"] as? Int) == 0 }
        }
    }

    /// Compares every output topic with the engine's uninterrupted output; returns the
    /// number of output records compared.
    static func compare(_ daemon: DaemonProcess) async throws -> Int {
        let input = try await records(daemon, "sensors")
        let expected = try expectedOutputs(input)
        #expect((expected["agg"]?.count ?? 0) > 100)
        #expect((expected["agg_late"]?.count ?? 0) > 0)
        #expect((expected["agg.dead-letter"]?.count ?? 0) > 0)
        var compared = 0
        for topic in ["agg", "agg_late", "agg.dead-letter", "flt", "flt.dead-letter"] {
            let actual = try await records(daemon, topic)
            let wanted = expected[topic] ?? []
            compared += actual.count
            if actual != wanted {
                let index = (0..<min(actual.count, wanted.count)).first { actual[$0] != wanted[$0] } ?? min(actual.count, wanted.count)
                Issue.record(
                    "\(topic): \(actual.count) records, expected \(wanted.count); first difference at \(index): \(index < actual.count ? "\(actual[index])" : "none") instead of \(index < wanted.count ? "\(wanted[index])" : "none")")
            }
        }
        return compared
    }

    /// Sum of one field of the "processor recovered" log lines.
    static func recovered(_ stderr: String, _ field: String) -> Int {
        stderr.split(separator: "\n").filter { $0.contains("processor recovered") }.reduce(0) { total, line in
            guard let range = line.range(of: "edgelog.\(field)=") else { return total }
            return total + (Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0)
        }
    }

    struct RunSummary {
        var inputRecords: Int
        var compared: Int
        var commitsReplayed: Int
        var outputsRestored: Int
        var stderr: String
    }

    /// `kills` cycles of: start, send `requests` requests of 120 records (none on every
    /// ninth cycle when `killDuringRecovery`, so the kill lands in or right after recovery),
    /// wait up to `maxDelayMs`, SIGKILL. Then a last start, the processors catch up, and every
    /// output topic is compared with the engine's uninterrupted output.
    static func run(
        _ daemon: DaemonProcess, kills: Int, requests: Int, maxDelayMs: Int, killDuringRecovery: Bool, seed: UInt64
    ) async throws -> RunSummary {
        var random = SplitMixGenerator(seed: seed)
        var request = 0
        var stderr = ""
        for cycle in 0..<kills {
            try await daemon.start()
            if !killDuringRecovery || cycle % 9 != 8 {
                // Records arrive while the processors work through the backlog.
                for _ in 0..<requests {
                    let (status, _) = try await daemon.request(
                        .POST, "/v1/topics/sensors/records", contentType: "application/x-ndjson", body: body(request: request, records: 120))
                    #expect(status == 200)
                    request += 1
                }
                try await Task.sleep(for: .milliseconds(random.next(upTo: maxDelayMs)))
            }
            try await daemon.stop(signal: SIGKILL)
            stderr += daemon.stderr  // each start begins a new file
        }
        try await daemon.start()
        try await caughtUp(daemon)
        let compared = try await compare(daemon)
        stderr += daemon.stderr
        try await daemon.stop()
        return RunSummary(
            inputRecords: request * 120, compared: compared, commitsReplayed: recovered(stderr, "commits_replayed"),
            outputsRestored: recovered(stderr, "outputs_restored"), stderr: stderr)
    }

    @Test func theCLIManagesProcessorsAndTestsQueriesWithoutADaemon() async throws {
        let daemon = try DaemonProcess(extraConfig: Self.config())
        defer { daemon.remove() }
        try await daemon.start()
        let server = ["--server", daemon.baseURL]
        let (created, createdOut, createdErr) = try DaemonProcess.cli(
            ["streams", "create", "CREATE STREAM hot WITH (KAFKA_TOPIC = 'hot') AS SELECT key FROM sensors WHERE $.t > 90"] + server)
        #expect(created == 0, "\(createdErr)")
        #expect(createdOut.contains("created processor hot"))
        let (bad, _, badErr) = try DaemonProcess.cli(["streams", "create", "CREATE STREAM x AS SELECT FROM sensors"] + server)
        #expect(bad == 1)
        #expect(badErr.contains("invalid query: line 1, column 27"), "\(badErr)")
        let (listed, list, _) = try DaemonProcess.cli(["streams", "list"] + server)
        #expect(listed == 0)
        #expect(list.contains("agg") && list.contains("flt") && list.contains("hot"), "\(list)")
        let (described, description, _) = try DaemonProcess.cli(["streams", "describe", "agg"] + server)
        #expect(described == 0)
        #expect(description.contains("agg: RUNNING (defined in file)"), "\(description)")
        #expect(description.contains("sensors-0"))
        let (fileDrop, _, fileDropErr) = try DaemonProcess.cli(["streams", "drop", "agg"] + server)
        #expect(fileDrop != 0)
        #expect(fileDropErr.contains("defined in the configuration file"))
        let (dropped, _, _) = try DaemonProcess.cli(["streams", "drop", "hot"] + server)
        #expect(dropped == 0)
        try await daemon.stop()

        // `streams test`: a fixture on virtual time, compared with an expected output.
        let fixture = daemon.directory + "/fixture.ndjson"
        let expected = daemon.directory + "/expected.ndjson"
        try """
            {"key":"a","value":{"t":1},"timestamp":1000}
            {"key":"a","value":{"t":3},"timestamp":2000}
            {"key":"b","value":{"t":5},"timestamp":61000}
            """.write(toFile: fixture, atomically: true, encoding: .utf8)
        let query = "CREATE STREAM s AS SELECT key, avg($.t) AS m FROM sensors WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY key"
        let (ran, output, _) = try DaemonProcess.cli(["streams", "test", query, "--input", fixture])
        #expect(ran == 0)
        #expect(output.split(separator: "\n").count == 2)
        try output.write(toFile: expected, atomically: true, encoding: .utf8)
        let (same, sameOut, _) = try DaemonProcess.cli(["streams", "test", query, "--input", fixture, "--expect", expected])
        #expect(same == 0)
        #expect(sameOut.contains("OK: 2 records as expected"))
        try output.replacingOccurrences(of: #""m":2.0"#, with: #""m":2.5"#).write(toFile: expected, atomically: true, encoding: .utf8)
        let (differs, differences, _) = try DaemonProcess.cli(["streams", "test", query, "--input", fixture, "--expect", expected])
        #expect(differs == 1)
        #expect(differences.contains("line 1"), "\(differences)")
    }

    @Test func fiftyFiveKillsChangeNothingInTheOutput() async throws {
        let daemon = try DaemonProcess(extraConfig: Self.config())
        defer { daemon.remove() }
        // A pause between each commit and its outputs, so that kills land there too.
        daemon.environment = ["EDGELOG_STREAMS_TEST_COMMIT_PAUSE_MS": "15"]
        let run = try await Self.run(daemon, kills: 55, requests: 3, maxDelayMs: 80, killDuringRecovery: true, seed: 2026)
        #expect(run.commitsReplayed > 0, "recoveries replayed commits")
        #expect(run.outputsRestored > 0, "some kills fell between a commit and its outputs, which recovery appended")
        print("streams golden run: 55 kills, \(run.inputRecords) input records, \(run.compared) outputs compared, \(run.commitsReplayed) commits replayed, \(run.outputsRestored) outputs restored")
    }

    @Test func powerCutsChangeNothingInTheOutput() async throws {
        let library = try TestTool.powerCutLibrary()
        let daemon = try DaemonProcess(extraConfig: Self.config())
        defer { daemon.remove() }
        try FileManager.default.createDirectory(atPath: daemon.dataDirectory, withIntermediateDirectories: true)
        daemon.environment = [
            "LD_PRELOAD": library, "POWERCUT_ROOT": daemon.dataDirectory, "POWERCUT_STATE": daemon.directory + "/powercut-state",
            "POWERCUT_EXE": "edgelog", "EDGELOG_STREAMS_TEST_COMMIT_PAUSE_MS": "15",
        ]
        let run = try await Self.run(daemon, kills: 10, requests: 4, maxDelayMs: 200, killDuringRecovery: false, seed: 7)
        #expect(run.stderr.contains("powercut: rebooted"), "the power-cut library was active")
        #expect(run.commitsReplayed > 0, "recoveries replayed commits")
        print("streams power cuts: 10 cuts, \(run.inputRecords) input records, \(run.compared) outputs compared, \(run.commitsReplayed) commits replayed, \(run.outputsRestored) outputs restored")
    }
}

/// SplitMix64, so that every run sends the same workload.
struct SplitMixGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(upTo bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
