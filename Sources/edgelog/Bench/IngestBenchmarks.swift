import AsyncHTTPClient
import Foundation

/// The daemon's ingest benchmarks, each against a reference measured in the same run: MQTT
/// (mosquitto delivering to a null subscriber, in MQTTBenchmarks.swift), HTTP bulk (wrk
/// against the same server's /healthz), and the daemon's resident memory.
struct IngestBenchmarks {
    let directory: String
    let messages: Int
    let executable: String
    /// Tests/Interop: the MQTT publisher's C source and the Kafka latency consumer.
    var interop = "Tests/Interop"

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: Processes

    func launch(_ path: String, _ arguments: [String], stdin: String? = nil, stdout: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let stdin { process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdin)) }
        process.standardOutput = stdout ?? FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func waitForPort(_ port: Int, timeout: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if connected == 0 { return }
            usleep(20_000)
        }
        throw Failure("nothing listens on 127.0.0.1:\(port)")
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    // MARK: HTTP

    struct WrkResult {
        var requestsPerSecond: Double
        var p50Ms: Double
        var p99Ms: Double
    }

    /// wrk with `connections` connections for `seconds`; with `script` (a Lua file) or a GET.
    func wrk(url: String, connections: Int, seconds: Int, script: String?) throws -> WrkResult {
        let output = directory + "/wrk-\(UUID().uuidString.prefix(6)).txt"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        var arguments = ["-t2", "-c\(connections)", "-d\(seconds)s", "--latency"]
        if let script { arguments += ["-s", script] }
        let process = try launch("/usr/bin/wrk", arguments + [url], stdout: handle)
        process.waitUntilExit()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        func latency(_ label: String) -> Double {
            guard let line = text.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) }) else { return .nan }
            let value = line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init) ?? ""
            if value.hasSuffix("us") { return (Double(value.dropLast(2)) ?? .nan) / 1000 }
            if value.hasSuffix("ms") { return Double(value.dropLast(2)) ?? .nan }
            if value.hasSuffix("s") { return (Double(value.dropLast(1)) ?? .nan) * 1000 }
            return .nan
        }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let rate = Double(line.split(separator: " ", omittingEmptySubsequences: true).last ?? "")
        else { throw Failure("cannot read wrk's output: \(text)") }
        if text.contains("Non-2xx") { throw Failure("wrk saw error answers: \(text)") }
        return WrkResult(requestsPerSecond: rate, p50Ms: latency("50%"), p99Ms: latency("99%"))
    }

    /// A wrk script posting NDJSON bodies of `records` 100-byte records.
    func ndjsonScript(records: Int) throws -> String {
        var body = ""
        for index in 0..<records {
            let json = "{\"key\":\"d\(index % 16)\",\"value\":{\"seq\":\(index),\"celsius\":21.5,\"pad\":\"\(String(repeating: "x", count: 40))\"}}"
            body += json + "\\n"
        }
        let path = directory + "/ndjson.lua"
        try """
            wrk.method = "POST"
            wrk.body = "\(body.replacingOccurrences(of: "\"", with: "\\\""))"
            wrk.headers["Content-Type"] = "application/x-ndjson"
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: The daemon

    final class Daemon {
        let process: Process
        let port: Int
        let dataDirectory: String
        init(process: Process, port: Int, dataDirectory: String) {
            self.process = process
            self.port = port
            self.dataDirectory = dataDirectory
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }

        /// A GET to the daemon, nil when it does not answer. (Not Foundation's URL loading: that
        /// needs libcurl, which the static release binary should not link.)
        func get(_ path: String) -> String? {
            guard let response = try? HTTPClient.shared.get(url: "http://127.0.0.1:\(port)\(path)").wait(),
                let body = response.body
            else { return nil }
            return String(buffer: body)
        }

        /// Resident set size now and at its peak, from /proc.
        func memory() -> (rssMB: Double, peakMB: Double) {
            let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            func kilobytes(_ key: String) -> Double {
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return .nan }
                return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? .nan
            }
            return (kilobytes("VmRSS:") / 1024, kilobytes("VmHWM:") / 1024)
        }

        func waitForMetric(_ name: String, atLeast value: Double, timeout: Double = 30) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let total = (get("/metrics") ?? "").split(separator: "\n").filter { $0.hasPrefix(name) }
                    .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
                if total >= value { return }
                usleep(50_000)
            }
            throw Failure("\(name) did not reach \(value)")
        }

        func waitForRecords(topic: String, count: Int, timeout: Double) throws {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let text = get("/v1/topics/\(topic)"), let data = text.data(using: .utf8),
                    let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                    let partitions = json["partitions"] as? [[String: Any]]
                {
                    let total = partitions.reduce(0) { $0 + (($1["log_end_offset"] as? Int) ?? 0) }
                    if total >= count { return }
                }
                usleep(20_000)
            }
            throw Failure("the log did not reach \(count) records in \(topic) within \(timeout) s")
        }
    }

    /// The daemon with its Kafka listener on `kafkaPort`, or without one.
    /// `kafka` goes into the `[kafka]` table; `dataDirectory` reopens an earlier daemon's data.
    func startDaemon(extra: String = "", kafkaPort: Int? = nil, kafka: String = "", dataDirectory: String? = nil) throws -> Daemon {
        let port = Self.freePort()
        let data = dataDirectory ?? directory + "/daemon-\(port)"
        let config = directory + "/edgelog-\(port).toml"
        try """
            [server]
            data_dir = "\(data)"

            [http]
            listen = "127.0.0.1:\(port)"
            max_body_bytes = 16777216

            [kafka]
            \(kafkaPort.map { "listen = \"127.0.0.1:\($0)\"" } ?? "enabled = false")
            \(kafka)

            [storage]
            flush = "always"

            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let process = try launch(executable, ["serve", "--config", config, "--log-level", "warning"])
        let daemon = Daemon(process: process, port: port, dataDirectory: data)
        let deadline = Date().addingTimeInterval(60)
        while daemon.get("/readyz")?.contains("ready") != true {
            guard Date() < deadline, process.isRunning else { throw Failure("the daemon did not start") }
            usleep(20_000)
        }
        return daemon
    }
}
