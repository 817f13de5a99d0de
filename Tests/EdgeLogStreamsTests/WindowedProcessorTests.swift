import Testing

@testable import EdgeLogStreams

/// Windows on event time: tumbling, hopping, session and count; grace, out-of-orderness, late
/// records by policy, idle inputs, and keys of the form key|window_start.
@Suite struct WindowedProcessorTests {
    static let downsample = """
        CREATE STREAM per_minute WITH (OUT_OF_ORDER = '5 SECONDS') AS
        SELECT key, avg(t) AS avg_t, min(t) AS min_t, max(t) AS max_t, count(*) AS n, last(t) AS last_t, first(t) AS first_t
        FROM sensors WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) GROUP BY key EMIT FINAL
        """

    @Test func aTumblingWindowEmitsOnceWhenTheWatermarkPassesItsEndAndGrace() throws {
        let result = try run(Self.downsample, [
            reading("a", #"{"t": 10}"#, at: 1_000),
            reading("a", #"{"t": 30}"#, at: 50_000),
            reading("b", #"{"t": 5}"#, at: 20_000),
            reading("a", #"{"t": 20}"#, at: 40_000),  // out of order, earlier than the last: still last(t) = 30
            reading("a", #"{"t": 99}"#, at: 74_000),  // watermark 69 s: window [0, 60) + 10 s grace not closed yet
            reading("a", #"{"t": 1}"#, at: 59_000),   // 15 s out of order but within grace: accepted
            reading("a", #"{"t": 7}"#, at: 75_001),   // watermark 70.001 s: the first minute closes
        ], closeAtEnd: false)
        #expect(result.lines.count == 2, "\(result.lines)")
        #expect(result.lines.map { key($0) } == ["a|0", "b|0"], "ordered by close time, then start, then key")
        let a = value(result.lines[0])
        #expect(a["avg_t"] == .double(15.25))
        #expect(a["min_t"] == .int(1))
        #expect(a["max_t"] == .int(30))
        #expect(a["n"] == .int(4))
        #expect(a["last_t"] == .int(1), "last by event time: the reading at 59 s")
        #expect(a["first_t"] == .int(10))
        #expect(a["window_start"] == .int(0))
        #expect(a["window_end"] == .int(60_000))
        #expect(members(result.lines[0])["timestamp"] == .int(0), "an output's timestamp is its window start")
        #expect(value(result.lines[1])["n"] == .int(1))
        #expect(result.metrics.openWindows == 1)
        #expect(result.metrics.watermarkMs == 70_001)
    }

    @Test func lateRecordsAreDroppedSentAsideOrUpdateTheirWindowAndAlwaysCounted() throws {
        let fixture = [
            reading("a", #"{"t": 1}"#, at: 1_000),
            reading("a", #"{"t": 2}"#, at: 12_000),  // closes [0, 10 s) (no grace)
            reading("a", #"{"t": 3}"#, at: 2_000),   // late
        ]
        let dropped = try run("CREATE STREAM s AS SELECT key, sum(t) AS total FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY key", fixture)
        #expect(dropped.lines.map { value($0)["total"] } == [.int(1), .int(2)])
        #expect(dropped.metrics.late == 1)
        #expect(dropped.metrics.lateDropped == 1)

        let aside = try run("CREATE STREAM s WITH (LATE_TOPIC = 'late-ones') AS SELECT key, sum(t) AS total FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY key", fixture)
        #expect(aside.lines.map { topic($0) } == ["s", "late-ones", "s"])
        #expect(value(aside.lines[1]) == ["t": .int(3)], "the late record goes aside unchanged")
        #expect(headersOf(aside.lines[1])["edgelog-late-watermark"] == .string("12000"))
        #expect(aside.metrics.lateToSideTopic == 1)

        let updated = try run("CREATE STREAM s WITH (LATE = 'update', RETENTION = '1 MINUTE') AS SELECT key, sum(t) AS total FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY key", fixture)
        #expect(updated.lines.map { key($0) } == ["a|0", "a|0", "a|10000"])
        #expect(updated.lines.map { value($0)["total"] } == [.int(1), .int(4), .int(2)], "the closed window is emitted again with the late reading")
        #expect(headersOf(updated.lines[1])["edgelog-late-update"] == .string("true"))
        #expect(updated.metrics.lateUpdates == 1)
        #expect(updated.metrics.late == 1)
    }

    @Test func hoppingWindowsCountARecordInEachWindowItFalls() throws {
        let result = try run(
            "CREATE STREAM s AS SELECT key, count(*) AS n FROM sensors WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS) GROUP BY key",
            [reading("a", "{}", at: 25_000), reading("a", "{}", at: 31_000)])
        #expect(result.lines.map { key($0) } == ["a|0", "a|10000", "a|20000", "a|30000"])
        #expect(result.lines.map { value($0)["n"] } == [.int(1), .int(2), .int(2), .int(1)])
    }

    @Test func sessionWindowsMergeWhenARecordBridgesTwo() throws {
        let result = try run(
            "CREATE STREAM s WITH (OUT_OF_ORDER = '20 SECONDS') AS SELECT key, count(*) AS n, sum(t) AS total, window_start, window_end FROM sensors WINDOW SESSION (10 SECONDS) GROUP BY key",
            [
                reading("a", #"{"t": 1}"#, at: 0),
                reading("a", #"{"t": 2}"#, at: 18_000),  // 18 s after: a second session
                reading("a", #"{"t": 3}"#, at: 9_000),   // within 10 s of both: they merge
                reading("a", #"{"t": 4}"#, at: 60_000),  // closes the merged one (watermark 40 >= 18 + 10)
            ], closeAtEnd: true)
        #expect(result.lines.map { value($0)["n"] } == [.int(3), .int(1)])
        #expect(value(result.lines[0])["window_start"] == .int(0))
        #expect(value(result.lines[0])["window_end"] == .int(18_000))
        #expect(value(result.lines[0])["total"] == .int(6))
        #expect(key(result.lines[1]) == "a|60000")
    }

    @Test func countWindowsEmitEveryNRecordsPerKey() throws {
        let result = try run(
            "CREATE STREAM s AS SELECT key, avg(t) AS a FROM sensors WINDOW COUNT (3) GROUP BY key",
            (0..<7).map { reading($0 % 2 == 0 ? "even" : "odd", #"{"t": \#($0)}"#, at: Int64($0) * 1000) })
        #expect(result.lines.map { key($0) } == ["even|0", "odd|1000"], "the unfinished third window never emits")
        #expect(value(result.lines[0])["a"] == .double(2))
        #expect(value(result.lines[1])["a"] == .double(3))
        #expect(value(result.lines[0])["window_end"] == .int(4000))
    }

    @Test func emitChangesSendsEveryUpdateAndHavingFiltersResults() throws {
        let result = try run(
            "CREATE STREAM s AS SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY key HAVING count(*) >= 2 EMIT CHANGES",
            [reading("a", "{}", at: 1), reading("a", "{}", at: 2), reading("a", "{}", at: 3)])
        #expect(result.lines.map { value($0)["n"] } == [.int(2), .int(3)])

        let running = try run(
            "CREATE STREAM totals AS SELECT site, sum(kwh) AS kwh FROM sensors GROUP BY site",
            [reading("a", #"{"site":"n","kwh":1}"#, at: 1), reading("b", #"{"site":"s","kwh":2}"#, at: 2), reading("c", #"{"site":"n","kwh":3}"#, at: 3)])
        #expect(running.lines.map { key($0) } == ["n", "s", "n"], "a query without WINDOW keeps a running result per key")
        #expect(running.lines.map { value($0)["kwh"] } == [.int(1), .int(2), .int(4)])
    }

    @Test func anIdleInputLetsTheWatermarkFollowTheWallClock() throws {
        let fixture = [
            reading("a", #"{"t": 1}"#, at: 1_000),
            #"{"wall_clock": 30000}"#,
            #"{"idle": true}"#,
        ]
        let query = "CREATE STREAM s AS SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) GROUP BY key"
        let closed = try run(query, fixture, closeAtEnd: false)
        #expect(closed.lines.count == 1, "the quiet sensor's last window closes")
        #expect(closed.metrics.watermarkMs == 30_000)
        let waiting = try run(query, Array(fixture.prefix(2)), closeAtEnd: false)
        #expect(waiting.lines.isEmpty, "without the idle notice the window waits for more data")
    }

    @Test func theWatermarkIsTheLeastOfThePartitions() throws {
        let result = try run(
            "CREATE STREAM s AS SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY key",
            [
                reading("a", "{}", at: 1_000, partition: 0),
                reading("b", "{}", at: 2_000, partition: 1),
                reading("a", "{}", at: 50_000, partition: 0),  // partition 1 still at 2 s: nothing closes
                reading("b", "{}", at: 3_000, partition: 1),  // not late: the watermark is 2 s
            ], closeAtEnd: false)
        #expect(result.lines.isEmpty)
        #expect(result.metrics.late == 0)
        #expect(result.metrics.watermarkMs == 3_000)
    }

    @Test func numericAggregates() throws {
        let result = try run(
            """
            CREATE STREAM s AS SELECT key, stddev(v) AS sd, stddev_pop(v) AS sdp, twa(v) AS twa, rate(counter) AS rate,
              percentile(v, 0.5) AS p50, percentile(v, 99) AS p99, sum(v) AS total, count(missing) AS none
            FROM sensors WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY key
            """,
            // v: 2, 4, 4, 4, 5, 5, 7, 9 at 0..7 s; the counter resets after 30.
            zip([2, 4, 4, 4, 5, 5, 7, 9], [10, 20, 30, 5, 15, 25, 35, 45]).enumerated().map { index, pair in
                reading("a", #"{"v": \#(pair.0), "counter": \#(pair.1)}"#, at: Int64(index) * 1000)
            })
        let out = value(result.lines[0])
        #expect(out["sdp"] == .double(2))
        #expect(abs((out["sd"]?.double ?? 0) - 2.138089935299395) < 1e-12)
        // Step function over 0..7 s: (2 + 4 + 4 + 4 + 5 + 5 + 7) / 7
        #expect(abs((out["twa"]?.double ?? 0) - 31.0 / 7) < 1e-12)
        // Increases 10 + 10 + 5 (reset) + 10 + 10 + 10 + 10 = 65 over 7 s.
        #expect(abs((out["rate"]?.double ?? 0) - 65.0 / 7) < 1e-12)
        #expect(abs((out["p50"]?.double ?? 0) - 4) <= 4 * 0.02)
        #expect(abs((out["p99"]?.double ?? 0) - 9) <= 9 * 0.02)
        #expect(out["total"] == .int(40))
        #expect(out["none"] == .int(0))
    }

    @Test func thePercentileSketchStaysWithinItsAccuracyAndSize() {
        var sketch = QuantileSketch()
        for value in 1...100_000 { sketch.add(Double(value)) }
        for fraction in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let exact = (fraction * 100_000).rounded(.up)  // the nearest rank
            let estimate = sketch.quantile(fraction)!
            #expect(abs(estimate - exact) / exact <= 0.011, "p\(fraction): \(estimate) vs \(exact)")
        }
        #expect(sketch.positive.count <= QuantileSketch.maxBins)
        #expect(sketch.estimatedBytes < 64 * 1024)
    }
}
