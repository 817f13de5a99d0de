import EdgeLogKafka
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Consumer groups through the listener with confluent-kafka members: partitions split
/// between two members, taken over when one leaves, committed offsets kept across a restart.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct KafkaListenerGroupTests {
    /// One group member (Tests/Interop/kafka_group_consume.py) running in the background.
    final class Member {
        let process = Process()
        let output: String

        init(
            port: Int, group: String, idleSeconds: Double, directory: String, name: String, assignor: String = "range",
            instanceId: String? = nil, sessionTimeoutMs: Int = 6000
        ) throws {
            output = directory + "/member-\(name).jsonl"
            FileManager.default.createFile(atPath: output, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", interopScript("kafka_group_consume.py"), "--bootstrap", "127.0.0.1:\(port)", "--topic", "grp",
                "--group", group, "--idle-seconds", "\(idleSeconds)", "--max-seconds", "60", "--assignor", assignor,
                "--session-timeout-ms", "\(sessionTimeoutMs)",
            ] + (instanceId.map { ["--instance-id", $0] } ?? [])
            process.standardOutput = FileHandle(forWritingAtPath: output)
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        deinit { if process.isRunning { process.terminate() } }

        func finish(timeout: Duration = .seconds(70)) async throws {
            let done = try await eventually(timeout: timeout) { !self.process.isRunning }
            #expect(done, "the member finished")
        }

        var events: [[String: Any]] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        var assignments: [Set<Int>] { events.filter { $0["event"] as? String == "assign" }.map { Set($0["partitions"] as! [Int]) } }
        var values: [String] { events.filter { $0["event"] as? String == "record" }.map { ($0["value"] as! String).split(separator: " ")[0].description } }
    }

    static func produce(_ port: Int, count: Int, prefix: String) throws {
        let result = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_produce.py"), "--bootstrap", "127.0.0.1:\(port)", "--topic", "grp",
            "--count", "\(count)", "--prefix", prefix,
        ])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
    }

    /// KIP-345: a static member killed and started again within its session timeout gets its
    /// partitions back under a new member id, and the other member is never rebalanced.
    @Test func aStaticMemberThatRestartsGetsItsPartitionsBackWithoutARebalance() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"grp\"\npartitions = 4\n")
        defer { daemon.remove() }
        try await daemon.start()
        let port = daemon.kafkaPort
        try Self.produce(port, count: 200, prefix: "a")
        func member(_ name: String, instance: String) throws -> Member {
            try Member(
                port: port, group: "static", idleSeconds: 15, directory: daemon.directory, name: name,
                instanceId: instance, sessionTimeoutMs: 30_000)
        }
        let first = try member("first", instance: "edge-a")
        let second = try member("second", instance: "edge-b")
        let split = try await eventually(timeout: .seconds(30)) {
            first.assignments.last?.count == 2 && second.assignments.last?.count == 2
                && Set(first.values + second.values).count == 200
        }
        #expect(split, "two static members share the partitions and read everything: \(first.assignments) \(second.assignments)")
        let rebalancesBefore = daemon.stderr.components(separatedBy: "group rebalanced").count

        kill(second.process.processIdentifier, SIGKILL)  // no LeaveGroup
        let restarted = try member("restarted", instance: "edge-b")
        let back = try await eventually(timeout: .seconds(20)) { !restarted.assignments.isEmpty }
        #expect(back, "the restarted member is assigned")
        #expect(restarted.assignments.first == second.assignments.last, "the same partitions as before the kill")
        #expect(daemon.stderr.components(separatedBy: "group rebalanced").count == rebalancesBefore, "no rebalance")
        #expect(daemon.stderr.contains("static group member rejoined"))
        #expect(first.assignments.count == 1, "the other member kept its assignment throughout: \(first.assignments)")

        try Self.produce(port, count: 100, prefix: "b")
        let consumed = try await eventually(timeout: .seconds(30)) {
            Set((first.values + restarted.values).filter { $0.hasPrefix("b-") }).count == 100
        }
        #expect(consumed, "both members read the new records")
        try await first.finish()
        try await restarted.finish()
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: ["range", "roundrobin"])
    func twoMembersSplitPartitionsOneTakesOverAndCommitsSurviveARestart(assignor: String) async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"grp\"\npartitions = 4\n")
        defer { daemon.remove() }
        try await daemon.start()
        let port = daemon.kafkaPort
        try Self.produce(port, count: 400, prefix: "a")

        let first = try Member(port: port, group: "g1", idleSeconds: 2, directory: daemon.directory, name: "first", assignor: assignor)
        let second = try Member(port: port, group: "g1", idleSeconds: 6, directory: daemon.directory, name: "second", assignor: assignor)
        try await first.finish()
        try Self.produce(port, count: 200, prefix: "b")  // after the first member left
        try await second.finish()

        let shared = try #require(second.assignments.first { $0.count < 4 }, "the second member once shared: \(second.assignments)")
        let firstShare = try #require(first.assignments.first)
        #expect(shared.isDisjoint(with: firstShare) && shared.union(firstShare) == [0, 1, 2, 3], "\(firstShare) + \(shared)")
        #expect(second.assignments.last == [0, 1, 2, 3], "the second member took over every partition")
        let seen = Set(first.values + second.values)
        #expect(seen == Set((0..<400).map { "a-\($0)" } + (0..<200).map { "b-\($0)" }), "every record consumed")

        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: port), configuration: KafkaClientConfiguration())
        let groups = try await connection.send(ListGroupsRequest())
        #expect(groups.groups.map(\.groupId).contains("g1"))
        let described = try await connection.send(DescribeGroupsRequest(groups: ["g1"]))
        #expect(described.groups.first?.groupState == "Empty" && described.groups.first?.protocolType == "consumer")
        connection.close()

        // Committed offsets are durable: after a restart the group resumes after them.
        #expect(try await daemon.stop() == 0)
        try await daemon.start()
        try Self.produce(port, count: 10, prefix: "c")
        let third = try Member(port: port, group: "g1", idleSeconds: 2, directory: daemon.directory, name: "third")
        try await third.finish()
        #expect(Set(third.values) == Set((0..<10).map { "c-\($0)" }), "only what came after the commits: \(third.values.prefix(5))")
        #expect(try await daemon.stop() == 0)
    }

    @Test func aMemberThatDiesIsEvictedAfterItsSessionTimeout() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"grp\"\npartitions = 4\n")
        defer { daemon.remove() }
        try await daemon.start()
        let port = daemon.kafkaPort
        try Self.produce(port, count: 40, prefix: "a")
        let doomed = try Member(port: port, group: "g2", idleSeconds: 30, directory: daemon.directory, name: "doomed")
        let survivor = try Member(port: port, group: "g2", idleSeconds: 12, directory: daemon.directory, name: "survivor")
        let split = try await eventually(timeout: .seconds(30)) {
            doomed.assignments.last.map { $0.count < 4 } == true && survivor.assignments.last.map { $0.count < 4 } == true
        }
        #expect(split, "both members hold partitions")
        kill(doomed.process.processIdentifier, SIGKILL)  // no LeaveGroup: only the session timeout tells
        try Self.produce(port, count: 40, prefix: "b")
        try await survivor.finish()
        #expect(survivor.assignments.last == [0, 1, 2, 3], "the survivor took over after the 6 s session timeout")
        #expect(Set(survivor.values).isSuperset(of: (0..<40).map { "b-\($0)" }), "and read what the dead member would have")
        #expect(daemon.stderr.contains("expired"), "the eviction is logged")
        #expect(try await daemon.stop() == 0)
    }
}
