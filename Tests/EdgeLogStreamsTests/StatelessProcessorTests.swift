import Testing

@testable import EdgeLogStreams

/// Filters and projections, record by record: paths, functions, PARTITION BY, headers, and
/// records that cannot be processed going to the dead-letter topic.
@Suite struct StatelessProcessorTests {
    @Test func aFilterAndProjectionReshapeEachRecord() throws {
        let result = try run(
            """
            CREATE STREAM hot WITH (KAFKA_TOPIC = 'hot-readings') AS
            SELECT key AS device, value->'t' * 1.8 + 32 AS fahrenheit, upper(unit) AS unit,
                   CASE WHEN t > 40 THEN 'alarm' ELSE 'warm' END AS level, $.site.name AS site
            FROM sensors WHERE t > 30 AND unit = 'c'
            """,
            [
                reading("dev-1", #"{"t": 35, "unit": "c", "site": {"name": "north"}}"#, at: 1000),
                reading("dev-2", #"{"t": 20, "unit": "c"}"#, at: 1001),
                reading("dev-3", #"{"t": 45.5, "unit": "c", "site": {"name": "south"}}"#, at: 1002),
                reading("dev-4", #"{"t": 50, "unit": "f"}"#, at: 1003),
                reading("dev-5", #"not json"#.debugDescription, at: 1004),
            ])
        #expect(result.lines.count == 2)
        #expect(topic(result.lines[0]) == "hot-readings")
        #expect(key(result.lines[0]) == "dev-1", "the key is kept without PARTITION BY")
        #expect(value(result.lines[0]) == ["device": .string("dev-1"), "fahrenheit": .double(35 * 1.8 + 32), "unit": .string("C"), "level": .string("warm"), "site": .string("north")])
        #expect(value(result.lines[1])["level"] == .string("alarm"))
        #expect(value(result.lines[1])["fahrenheit"] == .double(45.5 * 1.8 + 32))
        #expect(result.metrics.recordsIn == 5)
        #expect(result.metrics.filtered == 3)
        #expect(result.metrics.recordsOut == 2)
    }

    @Test func selectStarPassesTheValueThroughAndPartitionByReKeys() throws {
        let result = try run(
            "CREATE STREAM by_site AS SELECT * FROM sensors PARTITION BY value->'site'",
            [reading("dev-1", #"{"site":"north", "t":1}"#, at: 5), reading("dev-2", #"{"t":2}"#, at: 6)])
        #expect(result.lines.count == 2)
        #expect(key(result.lines[0]) == "north")
        #expect(members(result.lines[1])["key"] == .null, "a null PARTITION BY value gives a null key")
        #expect(value(result.lines[0]) == ["site": .string("north"), "t": .int(1)])
        #expect(members(result.lines[0])["timestamp"] == .int(5))

        let widened = try run(
            "CREATE STREAM s AS SELECT *, t * 10 AS t, 'x' AS tag FROM sensors",
            [reading("dev-1", #"{"t": 2, "u": true}"#, at: 5)])
        #expect(value(widened.lines[0]) == ["t": .int(20), "u": .bool(true), "tag": .string("x")], "named columns replace the value's members of the same name")
    }

    @Test func recordPartsHeadersAndFunctions() throws {
        let line = #"{"topic":"sensors","partition":2,"offset":41,"key":"k","value":{"name":"  Boiler-7 ","ts":"2026-12-07T10:15:30.250Z","n":[1,2,3]},"timestamp":1000,"headers":{"site":"plant-9"}}"#
        let result = try run(
            """
            CREATE STREAM s AS SELECT partition, offset, topic, timestamp, headers->'site' AS site,
              trim(name) AS name, lower(substring(trim(name), 1, 6)) AS kind, length(trim(name)) AS len,
              stringtotimestamp(value->'ts') AS ts_ms, timestamptostring(stringtotimestamp(ts), 'yyyy-MM-dd HH:mm') AS minute,
              array_length(n) AS count_n, value->'n'->1 AS second, coalesce(missing, 'none') AS fallback,
              CAST('42' AS BIGINT) + 1 AS answer, round(2.25, 1) AS rounded, 7 / 2 AS int_div, 7 / 2.0 AS real_div,
              1 / 0 AS by_zero, name LIKE '%Boiler%' AS matches, replace('a-b-c', '-', '+') AS replaced, lpad('7', 3, '0') AS padded
            FROM sensors
            """, [line])
        let out = value(result.lines[0])
        #expect(out["partition"] == .int(2))
        #expect(out["offset"] == .int(41))
        #expect(out["topic"] == .string("sensors"))
        #expect(out["timestamp"] == .int(1000))
        #expect(out["site"] == .string("plant-9"))
        #expect(out["name"] == .string("Boiler-7"))
        #expect(out["kind"] == .string("boiler"))
        #expect(out["len"] == .int(8))
        #expect(out["ts_ms"] == .int(1_796_638_530_250))
        #expect(out["minute"] == .string("2026-12-07 10:15"))
        #expect(out["count_n"] == .int(3))
        #expect(out["second"] == .int(2))
        #expect(out["fallback"] == .string("none"))
        #expect(out["answer"] == .int(43))
        #expect(out["rounded"] == .double(2.3))
        #expect(out["int_div"] == .int(3))
        #expect(out["real_div"] == .double(3.5))
        #expect(out["by_zero"] == .null)
        #expect(out["matches"] == .bool(true))
        #expect(out["replaced"] == .string("a+b+c"))
        #expect(out["padded"] == .string("007"))
        #expect(headersOf(result.lines[0])["site"] == .string("plant-9"), "headers pass through a projection")
    }

    @Test func recordsWithoutAnEventTimeOrFromTheFutureGoToTheDeadLetterTopic() throws {
        let result = try run(
            "CREATE STREAM s WITH (MAX_FUTURE = '1 MINUTE') AS SELECT t FROM sensors TIMESTAMP BY value->'at'",
            [
                reading("a", #"{"t":1, "at": "2026-12-07T00:00:00Z"}"#, at: 1_796_601_600_000),
                reading("b", #"{"t":2, "at": "yesterday"}"#, at: 1_796_601_600_000),
                reading("c", #"{"t":3}"#, at: 1_796_601_600_000),
                reading("d", #"{"t":4, "at": 1796601690000}"#, at: 1_796_601_600_000),
            ])
        #expect(result.lines.map { topic($0) } == ["s", "s.dead-letter", "s.dead-letter", "s.dead-letter"])
        #expect(members(result.lines[0])["timestamp"] == .int(1_796_601_600_000), "the output carries the event time")
        #expect(headersOf(result.lines[1])["edgelog-dead-letter-reason"]?.text.contains("yesterday") == true)
        #expect(headersOf(result.lines[2])["edgelog-dead-letter-reason"]?.text.contains("null") == true)
        #expect(headersOf(result.lines[3])["edgelog-dead-letter-reason"]?.text.contains("90000 ms ahead") == true)
        #expect(headersOf(result.lines[3])["edgelog-source"] == .string("sensors/0/3"))
        #expect(result.metrics.deadLettered == 3)
    }

    @Test func theRunIsDeterministic() throws {
        var lines: [String] = []
        var seed: UInt64 = 42
        for index in 0..<2000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let jitter = Int64(seed >> 52)  // 0..4095 ms out of order
            lines.append(reading("dev-\(seed % 7)", #"{"t": \#(seed % 100)}"#, at: Int64(index) * 100 - jitter))
        }
        let query = "CREATE STREAM m WITH (OUT_OF_ORDER = '500ms') AS SELECT key, avg(t) AS a, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 200 MILLISECONDS) GROUP BY key"
        let first = try run(query, lines)
        let second = try run(query, lines)
        #expect(first.lines == second.lines)
        #expect(first.metrics.late > 0, "the workload has late records")
        #expect(first.metrics.late == first.metrics.lateDropped)
        let counted = first.lines.reduce(Int64(0)) { $0 + (value($1)["n"]?.int ?? 0) }
        #expect(counted + first.metrics.late == 2000, "every record is in a window or counted late")
    }
}

func headersOf(_ line: String) -> [String: StreamValue] {
    guard case .json(let text)? = members(line)["headers"] else { return [:] }
    return members(text)
}
