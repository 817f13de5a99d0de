import Testing

@testable import EdgeLogStreams

/// DEDUPE, THROTTLE and DEADBAND: per-key filters on event time, for the readings a metered
/// uplink should not carry.
@Suite struct KeyFilterTests {
    @Test func dedupeDropsAnIdSeenWithinTheSpanPerKey() throws {
        let result = try run(
            "CREATE STREAM once AS SELECT key, $.id AS id FROM sensors DEDUPE BY $.id WITHIN 10 SECONDS",
            [
                reading("a", #"{"id": 1}"#, at: 1_000),
                reading("a", #"{"id": 1}"#, at: 5_000),   // within 10 s: dropped
                reading("b", #"{"id": 1}"#, at: 5_500),   // another key: its own ids
                reading("a", #"{"id": 2}"#, at: 6_000),
                reading("a", #"{"id": 1}"#, at: 16_000),  // 11 s after the last sighting (5 s): passes
                reading("a", #"{"id": 1}"#, at: 2_000),   // out of order, 14 s before: passes
                reading("a", #"{}"#, at: 17_000),         // no id: passes
            ])
        #expect(result.lines.map { key($0) } == ["a", "b", "a", "a", "a", "a"])
        #expect(result.lines.map { value($0)["id"] } == [.int(1), .int(1), .int(2), .int(1), .int(1), .null])
        #expect(result.metrics.deduplicated == 1)
        #expect(result.metrics.recordsIn == 7)
        #expect(result.metrics.recordsOut == 6)
    }

    @Test func dedupeForgetsIdsOlderThanTheSpanSoStateStaysSmall() throws {
        let plan = try ProcessorPlan.make("CREATE STREAM once AS SELECT key FROM sensors DEDUPE BY $.id WITHIN 1 SECOND")
        let processor = StreamProcessor(plan: plan)
        var outputs: [StreamOutput] = []
        for index in 0..<10_000 {
            let record = StreamRecord(
                topic: "sensors", partition: 0, offset: Int64(index), timestampMs: Int64(index) * 100, key: Array("a".utf8),
                value: Array(#"{"id": \#(index)}"#.utf8))
            _ = processor.process(record, wallClockMs: 2_000_000, into: &outputs)
        }
        #expect(outputs.count == 10_000)
        let seen = processor.store.slots.compactMap { $0?.filter?.seen.count }.first ?? 0
        #expect(seen < 64 + 20, "ids older than a second pruned: \(seen) kept")
        #expect(processor.metrics.stateBytes < 8_000)
    }

    @Test func throttlePassesAtMostNPerWindowPerKey() throws {
        let result = try run(
            "CREATE STREAM slow AS SELECT key, $.n AS n FROM sensors THROTTLE 2 PER 10 SECONDS",
            [
                reading("a", #"{"n": 1}"#, at: 1_000),
                reading("a", #"{"n": 2}"#, at: 2_000),
                reading("a", #"{"n": 3}"#, at: 3_000),   // third in [0, 10 s): dropped
                reading("b", #"{"n": 4}"#, at: 3_500),   // another key
                reading("a", #"{"n": 5}"#, at: 10_000),  // a new window
                reading("a", #"{"n": 6}"#, at: 9_000),   // back in a window left behind: dropped
            ])
        #expect(result.lines.map { value($0)["n"] } == [.int(1), .int(2), .int(4), .int(5)])
        #expect(result.metrics.throttled == 2)
    }

    @Test func deadbandPassesWhenTheValueMovesOrTheTimeComes() throws {
        let result = try run(
            "CREATE STREAM moved AS SELECT key, $.t AS t FROM sensors DEADBAND $.t BY 0.5 EVERY 60 SECONDS",
            [
                reading("a", #"{"t": 20.0}"#, at: 0),        // the first always passes
                reading("a", #"{"t": 20.3}"#, at: 1_000),    // moved 0.3: dropped
                reading("a", #"{"t": 20.6}"#, at: 2_000),    // moved 0.6 from 20.0: passes
                reading("a", #"{"t": 20.7}"#, at: 30_000),   // dropped
                reading("a", #"{"t": 20.7}"#, at: 62_000),   // 60 s since the last that passed: passes
                reading("b", #"{"t": 20.7}"#, at: 62_500),   // another key
                reading("a", #"{"t": "n/a"}"#, at: 63_000),  // not a number: passes, remembers nothing
                reading("a", #"{"t": 20.8}"#, at: 64_000),   // 0.1 from 20.7: dropped
            ])
        #expect(result.lines.map { value($0)["t"] } == [.double(20.0), .double(20.6), .double(20.7), .double(20.7), .string("n/a")])
        #expect(result.metrics.deadbanded == 3)
    }

    @Test func filtersApplyInOrderAfterWhereAndByThePartitionByKey() throws {
        let result = try run(
            "CREATE STREAM s AS SELECT $.site AS site, $.id AS id FROM sensors WHERE $.ok PARTITION BY $.site DEDUPE BY $.id WITHIN 1 MINUTE THROTTLE 1 PER 1 MINUTE",
            [
                reading("d1", #"{"ok": true, "site": "n", "id": 1}"#, at: 1_000),
                reading("d2", #"{"ok": true, "site": "n", "id": 1}"#, at: 2_000),   // same site, same id: a duplicate
                reading("d3", #"{"ok": false, "site": "s", "id": 9}"#, at: 2_500),  // WHERE drops it first
                reading("d2", #"{"ok": true, "site": "n", "id": 2}"#, at: 3_000),   // new id, but throttled
                reading("d4", #"{"ok": true, "site": "s", "id": 1}"#, at: 4_000),
            ])
        #expect(result.lines.map { key($0) } == ["n", "s"])
        #expect(result.metrics.filtered == 1)
        #expect(result.metrics.deduplicated == 1)
        #expect(result.metrics.throttled == 1)
    }

    @Test func keyFilterStateIsBoundedLikeAnyOther() throws {
        let result = try run(
            "CREATE STREAM s WITH (MAX_KEYS = 2) AS SELECT key FROM sensors DEDUPE BY $.id WITHIN 1 HOUR",
            [
                reading("a", #"{"id": 1}"#, at: 1_000),
                reading("b", #"{"id": 1}"#, at: 2_000),
                reading("c", #"{"id": 1}"#, at: 3_000),  // evicts a, the least recent
                reading("a", #"{"id": 1}"#, at: 4_000),  // a was forgotten: passes again (and evicts b)
                reading("c", #"{"id": 1}"#, at: 5_000),  // c is still known: a duplicate
            ])
        #expect(result.lines.map { key($0) } == ["a", "b", "c", "a"])
        #expect(result.metrics.evictions == 2)
        #expect(result.metrics.deduplicated == 1)
        #expect(result.metrics.keys == 2)
        let dropNew = try run(
            "CREATE STREAM s WITH (MAX_KEYS = 1, ON_STATE_FULL = 'drop-new') AS SELECT key FROM sensors THROTTLE 5 PER 1 MINUTE",
            [reading("a", "{}", at: 1), reading("b", "{}", at: 2), reading("a", "{}", at: 3)])
        #expect(dropNew.lines.map { key($0) } == ["a", "a"])
        #expect(dropNew.metrics.droppedNewKeys == 1)
    }

    @Test func mistakesAreNamed() {
        let cases: [(String, String)] = [
            ("CREATE STREAM s AS SELECT key, count(*) FROM x GROUP BY key DEDUPE BY $.id WITHIN 1 MINUTE", "not with GROUP BY or WINDOW"),
            ("CREATE STREAM s AS SELECT key FROM x DEDUPE $.id WITHIN 1 MINUTE", "expected BY"),
            ("CREATE STREAM s AS SELECT key FROM x DEDUPE BY $.id", "expected WITHIN"),
            ("CREATE STREAM s AS SELECT key FROM x THROTTLE 0 PER 1 MINUTE", "a positive number of records"),
            ("CREATE STREAM s AS SELECT key FROM x THROTTLE 5 1 MINUTE", "expected PER"),
            ("CREATE STREAM s AS SELECT key FROM x DEADBAND $.t BY 'x'", "a threshold"),
            ("CREATE STREAM s AS SELECT key FROM x DEADBAND $.t BY 1 EVERY 0 SECONDS", "must be positive"),
            ("CREATE STREAM s AS SELECT key FROM x THROTTLE 1 PER 1 SECOND THROTTLE 2 PER 1 SECOND", "THROTTLE is given twice"),
        ]
        for (query, message) in cases {
            do {
                _ = try ProcessorPlan.make(query)
                Issue.record("accepted: \(query)")
            } catch {
                #expect(error.description.contains(message), "\(query): \(error.description)")
            }
        }
    }
}
