import Testing

@testable import EdgeLogStreams

/// Queries that parse but cannot run are refused with the reason; state stays within its
/// bound by the declared policy.
@Suite struct ProcessorPlanAndBoundTests {
    @Test(arguments: [
        ("CREATE STREAM s AS SELECT nosuch(t) FROM x", "unknown function nosuch()"),
        ("CREATE STREAM s AS SELECT key, t FROM x GROUP BY key", "'t' must be in GROUP BY"),
        ("CREATE STREAM s AS SELECT max(avg(t)) FROM x GROUP BY key", "cannot be nested"),
        ("CREATE STREAM s AS SELECT t FROM x WHERE count(*) > 1", "can only be used in the SELECT or HAVING"),
        ("CREATE STREAM s WITH (TYPO = 1) AS SELECT t FROM x", "unknown property TYPO"),
        ("CREATE STREAM s AS SELECT count(*) FROM x GROUP BY key EMIT FINAL", "EMIT FINAL needs a WINDOW"),
        ("CREATE STREAM s WITH (KAFKA_TOPIC = 'x') AS SELECT t FROM x", "would read its own output topic"),
        ("CREATE STREAM s WITH (LATE = 'maybe') AS SELECT t FROM x", "LATE must be"),
        ("CREATE STREAM s AS SELECT percentile(t, 2000) FROM x GROUP BY key", "percentile's p must be"),
        ("CREATE STREAM s AS SELECT t, t FROM x", "two output columns are named t"),
        ("CREATE STREAM s AS SELECT CAST(t AS BLOB) FROM x", "unknown type BLOB"),
        ("CREATE STREAM s AS SELECT substring(t) FROM x", "takes 2 to 3 arguments, not 1"),
    ])
    func aQueryThatCannotRunIsRefusedWithTheReason(query: String, message: String) {
        #expect {
            _ = try ProcessorPlan.make(query)
        } throws: { error in
            guard case .plan(let planError) = error as? StreamQueryError else { return false }
            return planError.message.contains(message)
        }
    }

    static let bounded = "SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY key"

    @Test func atTheKeyBoundTheLeastRecentKeyIsEmittedEarlyAsPartialAndEvicted() throws {
        let fixture = (0..<5000).map { reading("dev-\($0)", "{}", at: Int64($0)) }
        let result = try run("CREATE STREAM s WITH (MAX_KEYS = 100) AS \(Self.bounded)", fixture, closeAtEnd: false)
        #expect(result.metrics.keys == 100)
        #expect(result.metrics.evictions == 4900)
        #expect(result.lines.count == 4900)
        #expect(key(result.lines[0]) == "dev-0|0", "the least recently updated goes first")
        #expect(headersOf(result.lines[0])["edgelog-partial"] == .string("true"))
        let perKey = result.metrics.stateBytes / result.metrics.keys
        #expect(perKey < 1024, "a count per key costs well under a KiB (\(perKey) bytes)")
    }

    @Test func atTheByteBoundNewKeysAreDroppedOrTheProcessorPauses() throws {
        let fixture = (0..<300).map { reading("dev-\($0)", "{}", at: Int64($0)) }
        let dropped = try run("CREATE STREAM s WITH (MAX_STATE_BYTES = 20000, ON_STATE_FULL = 'drop-new') AS \(Self.bounded)", fixture)
        #expect(dropped.metrics.droppedNewKeys > 0)
        #expect(Int64(dropped.lines.count) + dropped.metrics.droppedNewKeys == 300, "every record is counted or dropped and counted")
        #expect(dropped.lines.allSatisfy { headersOf($0)["edgelog-partial"] == nil })

        let plan = try ProcessorPlan.make("CREATE STREAM s WITH (MAX_KEYS = 2, ON_STATE_FULL = 'pause') AS \(Self.bounded)")
        let processor = StreamProcessor(plan: plan)
        var outputs: [StreamOutput] = []
        func record(_ key: String, _ ms: Int64) -> StreamRecord {
            StreamRecord(topic: "sensors", partition: 0, offset: ms, timestampMs: ms, key: Array(key.utf8), value: Array("{}".utf8))
        }
        #expect(processor.process(record("a", 0), wallClockMs: 0, into: &outputs) == .consumed)
        #expect(processor.process(record("b", 1), wallClockMs: 1, into: &outputs) == .consumed)
        #expect(processor.process(record("c", 2), wallClockMs: 2, into: &outputs) == .paused)
        #expect(processor.metrics.recordsIn == 2, "a paused record is not taken")
        #expect(processor.process(record("a", 3), wallClockMs: 3, into: &outputs) == .consumed, "known keys go on")
        processor.markIdle(topic: "sensors", partition: 0, wallClockMs: 3_600_000, into: &outputs)
        #expect(outputs.count == 2, "the hour closes and frees the state")
        #expect(processor.process(record("c", 3_600_001), wallClockMs: 3_600_001, into: &outputs) == .consumed)
    }
}
