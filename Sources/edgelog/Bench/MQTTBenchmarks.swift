import Foundation

/// MQTT ingest benchmarks. Publishers are Tests/Interop/mqtt_publish.c (QoS 1, 1000 messages
/// unacknowledged at most, 100-byte JSON payloads carrying their publish time), compiled with
/// `cc` into the benchmark directory. The reference is mosquitto delivering the same messages
/// from the same publishers to a `mosquitto_sub` that discards them; the broker lets both
/// have 1000 messages in flight (`max_inflight_messages` for mosquitto_sub's v3.1.1 session,
/// edgelog's Receive Maximum for its v5 one).
extension IngestBenchmarks {
    /// The compiled publisher.
    func publisher() throws -> String {
        let output = directory + "/mqtt_publish"
        if FileManager.default.isExecutableFile(atPath: output) { return output }
        let cc = try launch("/usr/bin/env", ["cc", "-O2", "-o", output, interop + "/mqtt_publish.c", "-lmosquitto", "-lpthread"])
        cc.waitUntilExit()
        guard cc.terminationStatus == 0 else { throw Failure("cannot compile \(interop)/mqtt_publish.c (run from the repository)") }
        return output
    }

    /// mosquitto on a free port; `extra` lines replace the queue defaults.
    func startMosquitto(extra: [String] = []) throws -> (Process, Int) {
        let port = Self.freePort()
        let config = directory + "/mosquitto-\(port).conf"
        let queue = extra.isEmpty ? ["max_queued_messages 2000000", "max_inflight_messages 1000"] : extra
        try (["listener \(port) 127.0.0.1", "allow_anonymous true", "persistence false"] + queue)
            .joined(separator: "\n").write(toFile: config, atomically: true, encoding: .utf8)
        let process = try launch("/usr/sbin/mosquitto", ["-c", config])
        try waitForPort(port)
        return (process, port)
    }

    /// `publishers` publishers of `messages / publishers` messages each, to `bench/d<i>/x`, at
    /// `rate` messages/s in all (0: as fast as the broker acknowledges).
    func publish(port: Int, publishers: Int, rate: Double = 0, count: Int? = nil) throws -> [Process] {
        let each = (count ?? messages) / publishers
        return try (0..<publishers).map { index in
            try launch(try publisher(), [
                "--port", "\(port)", "--topic", "bench/d\(index)/x", "--count", "\(each)", "--id", "bench-pub-\(index)",
                "--name", "p\(index)", "--rate", "\(rate / Double(publishers))",
            ])
        }
    }

    /// mosquitto's own QoS 1 delivery rate from `publishers` publishers to one subscriber that
    /// discards everything: messages/s.
    func mosquittoReference(publishers: Int) throws -> Double {
        let (broker, port) = try startMosquitto()
        // SIGKILL: mosquitto started from a Swift process inherits a blocked SIGTERM.
        defer { kill(broker.processIdentifier, SIGKILL); broker.waitUntilExit() }
        // Register a persistent session first, so the broker queues for the subscriber and
        // the measurement does not depend on who connects first.
        let register = try launch("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-c", "-i", "null-sub", "-t", "bench/#", "-E"])
        register.waitUntilExit()
        let total = messages / publishers * publishers
        let start = Date()
        let subscriber = try launch(
            "/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-c", "-i", "null-sub", "-t", "bench/#", "-C", "\(total)"])
        for process in try publish(port: port, publishers: publishers) { process.waitUntilExit() }
        subscriber.waitUntilExit()
        return Double(total) / Date().timeIntervalSince(start)
    }

    func mqttDaemonConfig(port: Int, ack: String, connections: Int, partitions: Int) -> String {
        """
        [[topics]]
        name = "bench"
        partitions = \(partitions)
        [[mqtt.brokers]]
        name = "bench"
        port = \(port)
        client_id = "edgelog-bench-\(port)"
        ack = "\(ack)"
        connections = \(connections)
        [[mqtt.routes]]
        filter = "bench/{device}/#"
        topic = "bench"
        key = "{device}"
        """
    }

    /// The daemon's rate: messages/s that reach the log, from publish start until the log holds
    /// all of them.
    func edgelogMQTT(ack: String, connections: Int, publishers: Int) throws -> Double {
        let (broker, port) = try startMosquitto()
        defer { kill(broker.processIdentifier, SIGKILL); broker.waitUntilExit() }
        let daemon = try startDaemon(
            extra: mqttDaemonConfig(port: port, ack: ack, connections: connections, partitions: max(1, connections)))
        defer { daemon.stop() }
        try daemon.waitForMetric("edgelog_mqtt_connected", atLeast: Double(connections))
        let total = messages / publishers * publishers
        let start = Date()
        let running = try publish(port: port, publishers: publishers)
        try daemon.waitForRecords(topic: "bench", count: total, timeout: 600)
        for process in running { process.waitUntilExit() }
        return Double(total) / Date().timeIntervalSince(start)
    }

    struct Latency {
        var p50Ms: Double
        var p99Ms: Double
    }

    /// Publish-to-read latency with `ack = durable` on one connection at a steady `rate` for
    /// `seconds`: a confluent-kafka consumer (Tests/Interop/kafka_latency_consumer.py) tails
    /// the topic through the Kafka listener, which serves only committed records.
    func mqttLatency(rate: Double, seconds: Int) throws -> Latency {
        let (broker, port) = try startMosquitto()
        defer { kill(broker.processIdentifier, SIGKILL); broker.waitUntilExit() }
        let kafkaPort = Self.freePort()
        let daemon = try startDaemon(
            extra: mqttDaemonConfig(port: port, ack: "durable", connections: 1, partitions: 1), kafkaPort: kafkaPort)
        defer { daemon.stop() }
        try daemon.waitForMetric("edgelog_mqtt_connected", atLeast: 1)
        let count = Int(rate) * seconds
        let output = directory + "/latency.json"
        let errors = directory + "/latency.err"
        for path in [output, errors] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let consumer = Process()
        consumer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        consumer.arguments = [
            "python3", interop + "/kafka_latency_consumer.py", "--bootstrap", "127.0.0.1:\(kafkaPort)", "--topic", "bench",
            "--records", "\(count)",
        ]
        consumer.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        consumer.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try consumer.run()
        let deadline = Date().addingTimeInterval(60)
        while !((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").contains("ready") {
            guard Date() < deadline, consumer.isRunning else { throw Failure("the latency consumer did not start") }
            usleep(50_000)
        }
        for process in try publish(port: port, publishers: 1, rate: rate, count: count) { process.waitUntilExit() }
        consumer.waitUntilExit()
        guard let data = FileManager.default.contents(atPath: output),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let p50 = json["p50_ms"] as? Double, let p99 = json["p99_ms"] as? Double
        else { throw Failure("the latency consumer failed: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")") }
        return Latency(p50Ms: p50, p99Ms: p99)
    }

    struct CrashResult {
        var published: Int
        var missing: Int
        var duplicates: Int
    }

    /// A publisher at `rate` for `seconds` through a broker with `brokerSettings` (the deploy
    /// configuration's queue settings) while the daemon (`ack = durable`) is killed with
    /// SIGKILL and restarted `kills` times at even intervals; then every reading must be in
    /// the log.
    func mqttCrashRun(rate: Double, seconds: Int, kills: Int, brokerSettings: [String]) throws -> CrashResult {
        let (broker, port) = try startMosquitto(extra: brokerSettings)
        defer { kill(broker.processIdentifier, SIGKILL); broker.waitUntilExit() }
        let extra = mqttDaemonConfig(port: port, ack: "durable", connections: 1, partitions: 1)
        var daemon = try startDaemon(extra: extra)
        let data = daemon.dataDirectory
        try daemon.waitForMetric("edgelog_mqtt_connected", atLeast: 1)
        let count = Int(rate) * seconds
        let start = Date()
        let publishers = try publish(port: port, publishers: 1, rate: rate, count: count)
        for round in 1...kills {
            let due = start.addingTimeInterval(Double(seconds) * Double(round) / Double(kills + 1))
            if due > Date() { usleep(useconds_t(due.timeIntervalSinceNow * 1_000_000)) }
            kill(daemon.process.processIdentifier, SIGKILL)
            daemon.process.waitUntilExit()
            daemon = try startDaemon(extra: extra, dataDirectory: data)
        }
        defer { daemon.stop() }
        for process in publishers { process.waitUntilExit() }
        guard publishers.allSatisfy({ $0.terminationStatus == 0 }) else { throw Failure("the publisher failed") }
        try daemon.waitForRecords(topic: "bench", count: count, timeout: 600)
        // Everything the broker still holds for the session arrives before this marker.
        let marker = try launch("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", "bench/end/x", "-m", "end"])
        marker.waitUntilExit()
        try daemon.waitForRecords(topic: "bench", count: count + 1, timeout: 600)
        let dump = directory + "/crash-dump.txt"
        _ = FileManager.default.createFile(atPath: dump, contents: nil)
        let consume = try launch(
            executable, ["consume", "bench", "--from-beginning", "--server", "http://127.0.0.1:\(daemon.port)"],
            stdout: try FileHandle(forWritingTo: URL(fileURLWithPath: dump)))
        consume.waitUntilExit()
        var seen = Set<Int>()
        var total = 0
        for line in try String(contentsOfFile: dump, encoding: .utf8).split(separator: "\n") {
            guard let range = line.range(of: "\"seq\":") else { continue }
            let digits = line[range.upperBound...].prefix { $0.isNumber }
            guard let sequence = Int(digits) else { continue }
            seen.insert(sequence)
            total += 1
        }
        return CrashResult(published: count, missing: count - seen.intersection(0..<count).count, duplicates: total - seen.count)
    }
}
