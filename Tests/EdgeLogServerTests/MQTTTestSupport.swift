import EdgeLogServer
import EdgeLogStorage
import Foundation
import Logging
import NIOCore
@testable import EdgeLogCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct MQTTTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real mosquitto for one test, on a free loopback port, with its configuration, log and
/// (optional) persistence database in a temporary directory. `stop()` and `start()` again
/// keep the port and the directory, so with persistence the sessions survive.
final class MQTTTestBroker: @unchecked Sendable {
    static let executable = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "mosquitto"
    static let publisher = ["/usr/bin/mosquitto_pub", "/usr/local/bin/mosquitto_pub"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "mosquitto_pub"

    let port: Int
    let directory: String
    /// With TLS: the CA that signed the broker's certificate (for 127.0.0.1).
    let tlsCAFile: String?
    private var pid: pid_t = 0

    /// Lines appended to the configuration (`sys_interval 1`, queue limits).
    let extraConfiguration: [String]

    /// A broker on a new port; not started when `start` is false. With `tls`, the listener
    /// speaks TLS only, with a certificate from a CA made for the test by openssl.
    /// `maxQueuedMessages` replaces the test default of 100000.
    init(
        persistence: Bool = false, start: Bool = true, tls: Bool = false, maxQueuedMessages: Int = 100_000,
        extraConfiguration: [String] = []
    ) throws {
        let setsQueue = extraConfiguration.contains { $0.hasPrefix("max_queued_messages ") }
        self.extraConfiguration = (setsQueue ? [] : ["max_queued_messages \(maxQueuedMessages)"]) + extraConfiguration
        self.directory = NSTemporaryDirectory() + "edgelog-mqtt-broker-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.port = try Self.freePort()
        self.tlsCAFile = tls ? directory + "/ca.crt" : nil
        if tls { try makeCertificates() }
        try writeConfiguration(persistence: persistence)
        if start { try self.start() }
    }

    private func makeCertificates() throws {
        let openssl = "/usr/bin/openssl"
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: directory + "/ext.cnf", atomically: true, encoding: .utf8)
        try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/ca.key", "-out", directory + "/ca.crt", "-days", "2", "-subj", "/CN=edgelog test CA"])
        try run(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/server.key", "-out", directory + "/server.csr", "-subj", "/CN=127.0.0.1"])
        try run(openssl, ["x509", "-req", "-in", directory + "/server.csr", "-CA", directory + "/ca.crt", "-CAkey", directory + "/ca.key", "-CAcreateserial", "-out", directory + "/server.crt", "-days", "2", "-extfile", directory + "/ext.cnf"])
    }

    deinit {
        stop(signal: SIGKILL)
        try? FileManager.default.removeItem(atPath: directory)
    }

    var logFile: String { directory + "/mosquitto.log" }

    /// Rewrites the configuration; takes effect at the next `start()`.
    func writeConfiguration(persistence: Bool) throws {
        var lines = [
            "listener \(port) 127.0.0.1",
        ]
        if tlsCAFile != nil {
            lines += ["cafile \(directory)/ca.crt", "certfile \(directory)/server.crt", "keyfile \(directory)/server.key"]
        }
        lines += [
            "allow_anonymous true",
            "persistence \(persistence)",
            "persistence_location \(directory)/",
            "log_dest file \(logFile)",
            "log_type all",
        ]
        // By default room for everything a test publishes while edgelog is away (the
        // broker's default is 1000).
        lines += extraConfiguration
        // As root, mosquitto switches to the mosquitto user, which cannot write here.
        if getuid() == 0 { lines.append("user root") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/mosquitto.conf", atomically: true, encoding: .utf8)
    }

    /// Starts mosquitto and waits until it accepts TCP connections.
    ///
    /// Spawned with an empty signal mask rather than through Foundation's `Process`: the test
    /// runner's threads block SIGTERM, a child inherits that mask, and mosquitto only ever
    /// unblocks the signals it found unblocked at start, so it would never see SIGTERM.
    func start() throws {
        precondition(pid == 0, "already running")
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let configurationFile: String = directory + "/mosquitto.conf"
        var arguments: [UnsafeMutablePointer<CChar>?] = []
        for argument in [Self.executable, "-c", configurationFile] { arguments.append(strdup(argument)) }
        arguments.append(nil)
        defer { for argument in arguments { free(argument) } }
        var child = pid_t()
        let rc = posix_spawn(&child, Self.executable, &actions, &attributes, arguments, environ)
        guard rc == 0 else { throw MQTTTestFailure("posix_spawn \(Self.executable): \(String(cString: strerror(rc)))") }
        pid = child
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.accepts(port: port) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pid = 0
                throw MQTTTestFailure("mosquitto exited (status \(status)); log: \(log)")
            }
            guard ContinuousClock.now < deadline else { throw MQTTTestFailure("mosquitto does not accept connections on \(port)") }
            usleep(20_000)
        }
    }

    /// Stops mosquitto: SIGTERM (it saves its persistence database) or SIGKILL.
    func stop(signal: Int32 = SIGTERM) {
        guard pid != 0 else { return }
        kill(pid, signal)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Publishes one message with mosquitto_pub (QoS 1 unless told), payload bytes as they are.
    func publish(_ topic: String, _ payload: [UInt8], qos: Int = 1, retain: Bool = false) throws {
        var arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-q", "\(qos)", "-t", topic] + tlsArguments
        if retain { arguments.append("-r") }
        if payload.isEmpty {
            arguments.append("-n")
            try run(Self.publisher, arguments)
        } else {
            let file = directory + "/payload-\(UUID().uuidString)"
            try Data(payload).write(to: URL(fileURLWithPath: file))
            defer { try? FileManager.default.removeItem(atPath: file) }
            try run(Self.publisher, arguments + ["-f", file])
        }
    }

    func publish(_ topic: String, _ payload: String, qos: Int = 1, retain: Bool = false) throws {
        try publish(topic, Array(payload.utf8), qos: qos, retain: retain)
    }

    /// Publishes each line as one message over one connection (`mosquitto_pub -l`).
    func publish(_ topic: String, lines: [String], qos: Int = 1) throws {
        try run(
            Self.publisher, ["-h", "127.0.0.1", "-p", "\(port)", "-q", "\(qos)", "-t", topic, "-l"] + tlsArguments,
            stdin: lines.joined(separator: "\n") + "\n")
    }

    /// Starts publishing each line as one message (`mosquitto_pub -l`) and returns at once;
    /// wait for the returned process to exit.
    func startPublishing(_ topic: String, lines: [String], qos: Int = 1) throws -> Process {
        let file = directory + "/lines-\(UUID().uuidString)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.publisher)
        process.arguments = ["-h", "127.0.0.1", "-p", "\(port)", "-q", "\(qos)", "-t", topic, "-l"] + tlsArguments
        process.standardInput = FileHandle(forReadingAtPath: file)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Starts `Tests/Interop/mqtt_publish.c`: `count` QoS 1 messages `{"seq":N,...}` (N from 0)
    /// with up to 1000 unacknowledged, at `rate` messages/s (0: as fast as the broker takes
    /// them). Wait for the returned process to exit; status 0 means the broker acknowledged all.
    func startWindowedPublisher(_ topic: String, count: Int, rate: Double = 0) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestTool.mqttPublisher())
        process.arguments = ["--port", "\(port)", "--topic", topic, "--count", "\(count)", "--rate", "\(rate)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// The queue settings of deploy/mosquitto-edgelog.conf (what a box gets, and what
    /// scripts/run's broker uses), as configuration lines.
    static func deployQueueSettings() throws -> [String] {
        let text = try String(contentsOfFile: DaemonProcess.repository + "/deploy/mosquitto-edgelog.conf", encoding: .utf8)
        return text.split(separator: "\n").map(String.init).filter { line in
            ["max_queued_messages ", "max_queued_bytes ", "max_inflight_messages "].contains { line.hasPrefix($0) }
        }
    }

    private var tlsArguments: [String] { tlsCAFile.map { ["--cafile", $0] } ?? [] }

    private func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws {
        let result = try TestTool.run(executable, arguments, stdin: stdin)
        guard result.status == 0 else {
            throw MQTTTestFailure("\(executable) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
    }

    static func freePort() throws -> Int { DaemonProcess.freePort() }

    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}

/// A log in a temporary directory with an Ingestor over it, for one test.
final class MQTTTestLog: @unchecked Sendable {
    let directory: String
    let manager: LogManager
    let ingestor: Ingestor

    init(partitions: Int32 = 1) throws {
        directory = NSTemporaryDirectory() + "edgelog-mqtt-log-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        manager = try LogManager.open(configuration, logger: mqttTestLogger).0
        ingestor = Ingestor(manager: manager, autoCreateTopics: true, defaultPartitions: partitions, logger: mqttTestLogger)
    }

    deinit {
        manager.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Every record of `topic`, partition by partition, in offset order; none for a topic that
    /// does not exist (yet).
    func records(_ topic: String) throws -> [Record] {
        guard let topic = manager.topic(topic) else { return [] }
        let compressor = BatchCompressor()
        var records: [Record] = []
        for partition in topic.partitions {
            records += try partition.readRecords(from: partition.logStartOffset, maxBytes: 64 * 1024 * 1024, compressor: compressor)
        }
        return records
    }

    func values(_ topic: String) throws -> [String] {
        try records(topic).map { String(buffer: $0.value ?? ByteBuffer()) }
    }
}

let mqttTestLogger: Logger = {
    var logger = Logger(label: "edgelog-mqtt-test")
    logger.logLevel = ProcessInfo.processInfo.environment["EDGELOG_TEST_LOG"] == "1" ? .debug : .critical
    return logger
}()

/// Polls `condition` every 20 ms until it holds, failing after `timeout`.
func mqttEventually(
    _ what: @autoclosure () -> String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw MQTTTestFailure("timed out waiting for \(what())") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension RecordHeader {
    var text: String? { value.map { String(buffer: $0) } }
}

extension Record {
    func headerText(_ key: String) -> String? { headers.first { $0.key == key }?.text }
    var keyText: String? { key.map { String(buffer: $0) } }
    var valueBytes: [UInt8] { value.map { Array($0.readableBytesView) } ?? [] }
}
