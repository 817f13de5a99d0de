import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 13: the disk fails under the real daemon while MQTT (`ack = "durable"`, through a
/// real mosquitto) and HTTP producers stream into it. For each fault the producers get a clear
/// refusal (HTTP 507 or 503 with a code, MQTT messages left unacknowledged so the broker
/// delivers them again), the daemon stays up and says what happened, and once the disk works
/// again ingest resumes by itself, with every acknowledged record in the log.
///
/// - A full file system: a 64 MiB tmpfs as the data directory, filled by a file the test
///   writes while the load runs, then deleted.
/// - A read-only data directory and a failing fsync: `Tests/Faults/diskfault.c` preloaded,
///   switched on and off through its control file (a remount read-only is refused while the
///   daemon holds segments open for writing).
///
/// Negative control: with LogService's retry of fenced partitions removed (the in-place
/// recovery of issue 13), the read-only and fsync cases time out waiting for HTTP 200 after
/// the fault ends: before it, a fenced partition refused appends until a restart.
@Suite struct DaemonProcessDiskFaultTests {
    enum Fault: String, CustomStringConvertible, CaseIterable {
        case fileSystemFull, readOnly, fsyncFails
        var description: String { rawValue }
    }

    static func config(broker: MQTTTestBroker, clientId: String) -> String {
        MQTTDaemonTests.config(broker: broker, ack: "durable", clientId: clientId) + """

            [[topics]]
            name = "events"
            partitions = 1
            """
    }

    @Test(arguments: Fault.allCases)
    func producersAreRefusedAndIngestResumesByItself(fault: Fault) async throws {
        let broker = try MQTTTestBroker()
        let clientId = "edgelog-disk-\(fault)"
        let daemon = try DaemonProcess(extraConfig: Self.config(broker: broker, clientId: clientId))
        defer { daemon.remove() }
        let disk = try FaultyDisk(fault, daemon: daemon)
        defer { disk.release() }
        try await daemon.start()
        try await mqttEventually("the subscription") { broker.log.contains("Sending SUBACK to \(clientId)") }

        // 300 readings a second for 20 s, and HTTP requests of 10 records one after another.
        let readings = 6_000
        let publisher = try broker.startWindowedPublisher("sensors/device-1/reading", count: readings, rate: 300)
        let http = HTTPProbe()
        let producing = Task { await http.produce(daemon) }
        func pubacks() -> Int { broker.log.components(separatedBy: "Received PUBACK from \(clientId)").count - 1 }
        try await mqttEventually("both streams acknowledged") { pubacks() >= 300 && http.acknowledged >= 100 }

        try disk.fail()
        let expected = fault == .fileSystemFull ? (507, "disk_full") : (503, "partition_unavailable")
        try await mqttEventually("HTTP refusals with \(expected)", timeout: .seconds(60)) {
            http.refusals(status: expected.0, code: expected.1) >= 3
        }
        try await mqttEventually("MQTT messages refused", timeout: .seconds(60)) {
            daemon.stderr.contains("cannot store the MQTT messages; not acknowledged")
        }
        // Up, answering, and saying what is wrong.
        #expect(daemon.process?.isRunning == true)
        let (statusCode, status) = try await daemon.request(.GET, "/v1/status")
        #expect(statusCode == 200)
        switch fault {
        case .fileSystemFull:
            #expect(http.lastRefusal?.contains("file system full") == true, "\(http.lastRefusal ?? "")")
        case .readOnly:
            #expect(status.contains("Read-only file system"), "the fenced partition's error: \(status)")
        case .fsyncFails:
            #expect(status.contains("Input/output error"), "the fenced partition's error: \(status)")
        }

        try disk.heal()
        let resumed = http.acknowledged
        try await mqttEventually("HTTP acknowledgements again", timeout: .seconds(60)) { http.acknowledged >= resumed + 100 }
        producing.cancel()
        await producing.value
        await publisher.exited()
        #expect(publisher.terminationStatus == 0)
        try broker.publish("sensors/device-1/reading", "end")
        try await mqttEventually("every reading, then the marker", timeout: .seconds(120)) {
            try await daemon.recordValues("sensors").last == "end"
        }

        let sequences = try await daemon.recordValues("sensors").dropLast().map(MQTTDaemonTests.sequence)
        let missing = Set(0..<readings).subtracting(sequences)
        #expect(missing.isEmpty, "\(missing.count) readings lost")
        let events = Set(try await PowerCutTests.values(daemon, "events"))
        let lost = http.values.withLock { Set($0) }.subtracting(events)
        #expect(lost.isEmpty, "\(lost.count) acknowledged HTTP records lost")
        #expect(daemon.process?.isRunning == true)
        #expect(try await daemon.stop() == 0)
    }
}

/// The disk under a daemon's data directory, made to fail and to work again.
final class FaultyDisk: Sendable {
    let fault: DaemonProcessDiskFaultTests.Fault
    let dataDirectory: String
    let controlFile: String
    var fillerPath: String { dataDirectory + "/filler.bin" }

    init(_ fault: DaemonProcessDiskFaultTests.Fault, daemon: DaemonProcess) throws {
        self.fault = fault
        dataDirectory = daemon.dataDirectory
        controlFile = daemon.directory + "/diskfault-mode"
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        switch fault {
        case .fileSystemFull:
            let status = try TestTool.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", dataDirectory]).status
            guard status == 0 else { throw DaemonProcess.Failure("cannot mount a tmpfs at \(dataDirectory) (needs root)") }
        case .readOnly, .fsyncFails:
            try "ok\n".write(toFile: controlFile, atomically: true, encoding: .utf8)
            daemon.environment = [
                "LD_PRELOAD": try TestTool.diskFaultLibrary(), "DISKFAULT_ROOT": dataDirectory,
                "DISKFAULT_CONTROL": controlFile,
            ]
        }
    }

    func fail() throws {
        switch fault {
        case .fileSystemFull:
            // Every free byte of the tmpfs, in 1 MiB writes until ENOSPC.
            let fd = open(fillerPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw DaemonProcess.Failure("open \(fillerPath): \(errno)") }
            defer { close(fd) }
            let chunk = [UInt8](repeating: 0x55, count: 1 << 20)
            var written = 0
            while written < 1 << 30 {
                let result = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if result <= 0 { break }
                written += result
            }
            // Down to the last pages too, which a 1 MiB write may leave.
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, 4096) }) > 0 {}
        case .readOnly:
            try "read-only\n".write(toFile: controlFile, atomically: true, encoding: .utf8)
        case .fsyncFails:
            try "fsync-eio\n".write(toFile: controlFile, atomically: true, encoding: .utf8)
        }
    }

    func heal() throws {
        switch fault {
        case .fileSystemFull: try FileManager.default.removeItem(atPath: fillerPath)
        case .readOnly, .fsyncFails: try "ok\n".write(toFile: controlFile, atomically: true, encoding: .utf8)
        }
    }

    func release() {
        if fault == .fileSystemFull { _ = try? TestTool.run("/bin/umount", ["-l", dataDirectory]) }
    }
}

/// HTTP produce requests of 10 records, one after another, until cancelled; keeps the values
/// of every request answered 200 and the answers of those refused.
final class HTTPProbe: Sendable {
    let values = Mutex<[String]>([])
    private let refused = Mutex<[(status: Int, body: String)]>([])

    var acknowledged: Int { values.withLock { $0.count } }
    var lastRefusal: String? { refused.withLock { $0.last?.body } }

    func refusals(status: Int, code: String) -> Int {
        refused.withLock { $0.filter { $0.status == status && $0.body.contains("\"\(code)\"") }.count }
    }

    func produce(_ daemon: DaemonProcess) async {
        var request = 0
        while !Task.isCancelled && request < 100_000 {
            let batch = (0..<10).map { "h-\(request * 10 + $0)" }
            request += 1
            let body = batch.map { "{\"value\":\"\($0)\"}" }.joined(separator: "\n")
            guard let (status, answer) = try? await daemon.request(
                .POST, "/v1/topics/events/records", contentType: "application/x-ndjson", body: body)
            else { continue }
            if status == 200 {
                values.withLock { $0 += batch }
            } else {
                refused.withLock { $0.append((status, answer)) }
                // A refused producer backs off a little, as a client honouring Retry-After would.
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
