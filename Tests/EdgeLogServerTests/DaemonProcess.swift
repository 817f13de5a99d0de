import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The real `edgelog` executable run as a daemon process for integration tests, on a free
/// loopback port, with its data in a temporary directory.
final class DaemonProcess: @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let binary = repository + "/.build/debug/edgelog"
    static let http = HTTPClient(eventLoopGroupProvider: .singleton)

    let directory: String
    let port: Int
    let kafkaPort: Int
    let configPath: String
    private(set) var process: Process?
    private let stderrPath: String
    /// Added to the daemon's environment at every `start()` (LD_PRELOAD for the power-cut
    /// simulation, say).
    var environment: [String: String] = [:]

    /// `kafkaConfig` goes into the `[kafka]` table (TLS, users).
    init(extraConfig: String = "", kafkaConfig: String = "", port: Int = DaemonProcess.freePort()) throws {
        directory = NSTemporaryDirectory() + "edgelog-daemon-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.port = port
        self.kafkaPort = Self.freePort()
        configPath = directory + "/edgelog.toml"
        stderrPath = directory + "/stderr.log"
        let config = """
            [server]
            data_dir = "\(directory)/data"
            shutdown_timeout_seconds = 10

            [http]
            listen = "127.0.0.1:\(port)"

            [kafka]
            listen = "127.0.0.1:\(kafkaPort)"
            \(kafkaConfig)

            \(extraConfig)
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var dataDirectory: String { directory + "/data" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Starts the daemon and waits until /readyz answers 200.
    func start(timeout: Duration = .seconds(60)) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--config", configPath]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw Failure("edgelog exited with \(process.terminationStatus): \(stderr)") }
            if let (status, _) = try? await request(.GET, "/readyz"), status == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure("edgelog did not become ready: \(stderr)")
    }

    /// Sends a signal and waits for the process to exit; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) async throws -> Int32 {
        guard let process else { return -1 }
        kill(process.processIdentifier, signal)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw Failure("edgelog did not exit within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.process = nil
        return process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
    }

    func request(_ method: HTTPMethod, _ path: String, contentType: String? = nil, body: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await Self.http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }

    /// Every record value of `topic`'s `partition`, in offset order, read through the HTTP API.
    func recordValues(_ topic: String, partition: Int = 0) async throws -> [String] {
        var values: [String] = []
        var offset = 0
        while true {
            let (status, body) = try await request(
                .GET, "/v1/topics/\(topic)/partitions/\(partition)/records?offset=\(offset)&max_records=10000&format=binary")
            guard status == 200 else { throw Failure("read \(topic): \(status) \(body)") }
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            let records = json["records"] as! [[String: Any]]
            if records.isEmpty { return values }
            for record in records {
                let base64 = record["value_base64"] as? String ?? ""
                values.append(String(decoding: Data(base64Encoded: base64) ?? Data(), as: UTF8.self))
            }
            offset = json["next_offset"] as! Int
        }
    }

    func remove() {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs the edgelog CLI; returns exit status, stdout and stderr.
    static func cli(_ arguments: [String], stdin: String? = nil) throws -> (Int32, String, String) {
        try runProgram(binary, arguments, stdin: stdin)
    }

    /// Runs any program with `stdin` as its input; returns exit status, stdout and stderr.
    static func runProgram(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> (Int32, String, String) {
        let result = try TestTool.run(executable, arguments, stdin: stdin)
        return (result.status, result.stdout, result.stderr)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    /// A loopback port no one listens on, never handed out twice in this test process: from a
    /// range below Linux's ephemeral ports (32768-60999), where bind(0) would hand back a port
    /// another test had just freed, and a broker stopped and started again on "its" port could
    /// then find another test's daemon there (CI saw a queued message never arrive).
    static func freePort() -> Int {
        while true {
            let port = nextPort.withLock { port in
                defer { port = port >= 31_999 ? 20_000 : port + 1 }
                return port
            }
            if isBindable(port) { return port }
        }
    }

    private static let nextPort = Mutex(Int.random(in: 20_000..<31_000))

    private static func isBindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
