import Testing

@testable import EdgeLogStreams

/// The processor language's parser: the queries the issue names (filters, reshaping, windows,
/// paths into JSON values), and every kind of mistake with its line and column.
@Suite struct SQLParserTests {
    @Test func aWindowedAggregateParsesIntoItsClauses() throws {
        let statement = try SQLParser.parseCreateStream(
            """
            CREATE STREAM temperature_per_minute WITH (KAFKA_TOPIC = 'temps-1m', max_keys = 10000) AS
            SELECT key, avg(value->'t') AS avg_t, max($.t) max_t, count(*) AS n
            FROM sensors
            TIMESTAMP BY CAST(value->'ts' AS BIGINT)
            WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS)
            WHERE value->'unit' = 'C' AND value->'t' IS NOT NULL
            GROUP BY key
            HAVING count(*) > 2
            EMIT FINAL;
            """)
        #expect(statement.name == "temperature_per_minute")
        #expect(statement.properties == ["KAFKA_TOPIC": .string("temps-1m"), "MAX_KEYS": .integer(10000)])
        let select = statement.select
        #expect(select.items.map(\.alias) == [nil, "avg_t", "max_t", "n"])
        #expect(select.items[1].expression == .call("AVG", [.path(.column("value"), [.field("t")])]))
        #expect(select.items[2].expression == .call("MAX", [.path(.column("value"), [.field("t")])]), "$.t is value->'t'")
        #expect(select.items[3].expression == .call("COUNT", [.star]))
        #expect(select.sources == ["sensors"])
        #expect(select.timestampBy == .cast(.path(.column("value"), [.field("ts")]), "BIGINT"))
        #expect(select.window == .tumbling(size: .init(milliseconds: 60_000), grace: .init(milliseconds: 10_000)))
        #expect(select.filter == .binary(
            .and, .binary(.equal, .path(.column("value"), [.field("unit")]), .literal(.string("C"))),
            .isNull(.path(.column("value"), [.field("t")]), negated: true)))
        #expect(select.groupBy == [.column("key")])
        #expect(select.having == .binary(.greater, .call("COUNT", [.star]), .literal(.integer(2))))
        #expect(statement.emit == .final)
    }

    @Test func windowsOfEveryKind() throws {
        func window(_ text: String) throws -> SQLWindow? {
            try SQLParser.parseCreateStream("CREATE STREAM s AS SELECT count(*) FROM t WINDOW \(text) GROUP BY key").select.window
        }
        #expect(try window("HOPPING (SIZE 5 MINUTES, ADVANCE BY 30 SECONDS)") == .hopping(size: .init(milliseconds: 300_000), advance: .init(milliseconds: 30_000), grace: nil))
        #expect(try window("SESSION (90 SECONDS, GRACE PERIOD 1 HOUR)") == .session(gap: .init(milliseconds: 90_000), grace: .init(milliseconds: 3_600_000)))
        #expect(try window("COUNT (100)") == .count(100))
        #expect(try window("tumbling (size 500 milliseconds)") == .tumbling(size: .init(milliseconds: 500), grace: nil), "keywords in any case")
    }

    @Test func expressionsFollowSQLPrecedence() throws {
        #expect(try SQLParser.parseExpression("1 + 2 * 3") == .binary(.add, .literal(.integer(1)), .binary(.multiply, .literal(.integer(2)), .literal(.integer(3)))))
        #expect(try SQLParser.parseExpression("NOT a = 1 OR b = 2 AND c = 3") == .binary(
            .or, .unary(.not, .binary(.equal, .column("a"), .literal(.integer(1)))),
            .binary(.and, .binary(.equal, .column("b"), .literal(.integer(2))), .binary(.equal, .column("c"), .literal(.integer(3))))))
        #expect(try SQLParser.parseExpression("'a' || 'b' = 'ab'") == .binary(.equal, .binary(.concatenate, .literal(.string("a")), .literal(.string("b"))), .literal(.string("ab"))))
        #expect(try SQLParser.parseExpression("-5 - -2.5") == .binary(.subtract, .literal(.integer(-5)), .unary(.negate, .literal(.decimal(2.5)))))
        #expect(try SQLParser.parseExpression("x NOT BETWEEN 1 AND 5") == .between(.column("x"), .literal(.integer(1)), .literal(.integer(5)), negated: true))
        #expect(try SQLParser.parseExpression("x IN (1, 2.5, 'three')") == .inList(.column("x"), [.literal(.integer(1)), .literal(.decimal(2.5)), .literal(.string("three"))], negated: false))
        #expect(try SQLParser.parseExpression("name NOT LIKE 'dev-%'") == .like(.column("name"), .literal(.string("dev-%")), negated: true))
        #expect(try SQLParser.parseExpression("CASE WHEN t > 30 THEN 'hot' WHEN t < 0 THEN 'frozen' ELSE 'ok' END") == .caseWhen(
            operand: nil,
            branches: [
                .init(when: .binary(.greater, .column("t"), .literal(.integer(30))), then: .literal(.string("hot"))),
                .init(when: .binary(.less, .column("t"), .literal(.integer(0))), then: .literal(.string("frozen"))),
            ],
            otherwise: .literal(.string("ok"))))
        #expect(try SQLParser.parseExpression("coalesce(value->'a'->'b'->0, $['odd key'][2], NULL)") == .call("COALESCE", [
            .path(.column("value"), [.field("a"), .field("b"), .index(0)]), .path(.column("value"), [.field("odd key"), .index(2)]),
            .literal(.null),
        ]))
        #expect(try SQLParser.parseExpression("`select`") == .column("select"), "a quoted name is never a keyword")
        #expect(try SQLParser.parseExpression("'it''s' /* a comment */ -- and another\n") == .literal(.string("it's")))
    }

    @Test(arguments: [
        ("CREATE TABLE t AS SELECT 1 FROM s", 1, 8, "expected STREAM, found 'TABLE'"),
        ("CREATE STREAM s AS SELECT a FROM", 1, 33, "expected a topic name, found the end of the query"),
        ("CREATE STREAM s AS SELECT a\nFROM t WHERE a = ", 2, 18, "expected a value, a name or '('"),
        ("CREATE STREAM s AS SELECT a FROM t WHERE a = 'open", 1, 46, "string opened here is never closed"),
        ("CREATE STREAM s AS SELECT a FROM t WINDOW SLIDING (SIZE 1 MINUTE)", 1, 43, "expected TUMBLING, HOPPING, SESSION or COUNT"),
        ("CREATE STREAM s AS SELECT a FROM t WINDOW TUMBLING (SIZE 1 FORTNIGHT)", 1, 60, "expected a unit"),
        ("CREATE STREAM s AS SELECT a FROM t WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 2 MINUTES)", 1, 78, "cannot advance by more than its size"),
        ("CREATE STREAM s AS SELECT a FROM t WHERE a = 1 WHERE b = 2", 1, 48, "WHERE is given twice"),
        ("CREATE STREAM s AS SELECT a FROM t HAVING a > 1", 1, 48, "HAVING needs GROUP BY or a WINDOW"),
        ("CREATE STREAM s AS SELECT a FROM t EMIT SOMETIMES", 1, 41, "expected CHANGES or FINAL"),
        ("CREATE STREAM s AS SELECT a FROM t garbage", 1, 36, "expected the end of the query"),
        ("CREATE STREAM s AS SELECT value-> FROM t", 1, 35, "after '->'"),
        ("CREATE STREAM s AS SELECT 12abc FROM t", 1, 29, "a number runs into a name"),
        ("CREATE STREAM s AS SELECT 99999999999999999999 FROM t", 1, 47, "does not fit in 64 bits"),
        ("CREATE STREAM s AS SELECT a ~ b FROM t", 1, 29, "unexpected character '~'"),
        ("CREATE STREAM s WITH (a = 1, A = 2) AS SELECT a FROM t", 1, 30, "the property A is given twice"),
        ("CREATE STREAM s AS SELECT CASE END FROM t", 1, 32, "expected WHEN"),
    ] as [(String, Int, Int, String)])
    func mistakesNameTheirLineAndColumn(query: String, line: Int, column: Int, message: String) {
        do {
            _ = try SQLParser.parseCreateStream(query)
            Issue.record("accepted: \(query)")
        } catch {
            #expect(error.line == line && error.column == column, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "(", count: 5_000) + "1" + String(repeating: ")", count: 5_000)
        #expect(throws: SQLSyntaxError.self) { try SQLParser.parseExpression(deep) }
        let negations = String(repeating: "NOT ", count: 5_000) + "TRUE"
        #expect(throws: SQLSyntaxError.self) { try SQLParser.parseExpression(negations) }
        let minus = String(repeating: "- ", count: 5_000) + "x"
        #expect(throws: SQLSyntaxError.self) { try SQLParser.parseExpression(minus) }
    }
}
