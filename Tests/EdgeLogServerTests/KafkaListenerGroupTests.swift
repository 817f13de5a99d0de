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

        init(port: Int, group: String, idleSeconds: Double, directory: String, name: String, assignor: String = "range") throws {
            output = directory + "/member-\(name).jsonl"
            FileManager.default.createFile(atPath: output, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", interopScript("kafka_group_consume.py"), "--bootstrap", "127.0.0.1:\(port)", "--topic", "grp",
                "--group", group, "--idle-seconds", "\(idleSeconds)", "--max-seconds", "60", "--assignor", assignor,
            ]
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
