import EdgeLogStreams

/// The processor language's lexer and parser, on any bytes: a query parses or is refused with
/// a line and column inside the text, never a crash (deep nesting included).
enum SQLFuzzer: FuzzTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        // Lines as the lexer counts them: by newline bytes ("\r\n" is one Character in Swift).
        let lines = text.utf8.count { $0 == UInt8(ascii: "\n") } + 1
        for parse in [{ _ = try SQLParser.parseCreateStream(text) }, { _ = try SQLParser.parseExpression(text) }] as [() throws -> Void] {
            do { try parse() } catch let error as SQLSyntaxError {
                precondition(error.line >= 1 && error.line <= lines && error.column >= 1, "an error outside the text: \(error)")
            } catch {
                preconditionFailure("not a syntax error: \(error)")
            }
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        [
            ("windowed", "CREATE STREAM s WITH (KAFKA_TOPIC='o') AS SELECT key, avg(value->'t') a FROM t TIMESTAMP BY $.ts WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 10 SECONDS) WHERE $.u = 'C' GROUP BY key HAVING count(*) > 1 EMIT FINAL;"),
            ("expressions", "CREATE STREAM s AS SELECT CASE WHEN a BETWEEN 1 AND 2 THEN 'x' || b ELSE CAST(c AS DOUBLE) END, d NOT IN (1, 2.5e3, NULL), e NOT LIKE '%x' FROM `odd topic` PARTITION BY $['k'][0]"),
            ("comments", "-- a comment\nCREATE STREAM s AS /* another */ SELECT * FROM t WINDOW SESSION (30 SECONDS) EMIT CHANGES"),
            ("count", "CREATE STREAM s AS SELECT count(*) FROM t WINDOW COUNT (100) GROUP BY key"),
        ].map { ($0.0, Array($0.1.utf8)) }
    }
}
