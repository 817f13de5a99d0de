import EdgeLogTOML
import Testing

@Suite struct TOMLParserTests {
    @Test func tablesDottedKeysAndArraysOfTables() throws {
        let root = try TOMLParser.parse(
            """
            # a comment
            title = "edge"
            site.name = 'plant-3'   # dotted key
            site.rack = 7

            [server]
            data_dir = "/var/lib/edgelog"

            [a.b.c]
            x = 1
            [a]
            y = 2

            [[brokers]]
            name = "one"
            [brokers.tls]
            ca = "ca.pem"
            [[brokers]]
            name = "two"
            ports = [ 1883, 8883, ]
            limits = { rate = 1.5, burst = 10, nested.deep = true }
            """)
        #expect(root.keys == ["title", "site", "server", "a", "brokers"])
        #expect(root["title"]?.string == "edge")
        #expect(root["site"]?.table?["name"]?.string == "plant-3" && root["site"]?.table?["rack"]?.integer == 7)
        #expect(root["server"]?.line == 6 && root["server"]?.table?["data_dir"]?.line == 7)
        #expect(root["a"]?.table?["b"]?.table?["c"]?.table?["x"]?.integer == 1)
        #expect(root["a"]?.table?["y"]?.integer == 2 && root["a"]?.table?.line == 11)
        let brokers = try #require(root["brokers"]?.array)
        #expect(brokers.count == 2)
        #expect(brokers[0].table?["tls"]?.table?["ca"]?.string == "ca.pem")
        #expect(brokers[1].table?["ports"]?.array?.compactMap(\.integer) == [1883, 8883])
        let limits = try #require(brokers[1].table?["limits"]?.table)
        #expect(limits["rate"]?.float == 1.5 && limits["burst"]?.integer == 10)
        #expect(limits["nested"]?.table?["deep"]?.boolean == true)
        #expect(brokers[1].line == 18 && brokers[1].table?.line == 18)
    }

    @Test func stringsAndTheirEscapes() throws {
        let root = try TOMLParser.parse(
            #"""
            basic = "tab\there \"quoted\" \\ \u00e9 \U0001F600"
            literal = 'C:\path\n'
            multi = """
            first
              second\
                 joined"""
            quotes = """two quotes at the end: """""
            raw = '''
            no \escapes here
            '''
            empty = ""
            """#)
        #expect(root["basic"]?.string == "tab\there \"quoted\" \\ é 😀")
        #expect(root["literal"]?.string == #"C:\path\n"#)
        #expect(root["multi"]?.string == "first\n  secondjoined")
        #expect(root["quotes"]?.string == "two quotes at the end: \"\"")
        #expect(root["raw"]?.string == "no \\escapes here\n")
        #expect(root["empty"]?.string == "")
    }

    @Test func numbersAndDates() throws {
        let root = try TOMLParser.parse(
            """
            a = +99
            b = -17
            c = 1_000_000
            d = 0xDEAD_beef
            e = 0o755
            f = 0b1101
            g = 9223372036854775807
            h = -9223372036854775808
            i = 6.626e-34
            j = -0.0
            k = 1e06
            l = inf
            m = -nan
            n = 1979-05-27T07:32:00Z
            o = 1979-05-27 00:32:00.999999-07:00
            p = 1979-05-27
            q = 07:32:00
            r = 2024-02-29
            """)
        #expect(root["a"]?.integer == 99 && root["b"]?.integer == -17 && root["c"]?.integer == 1_000_000)
        #expect(root["d"]?.integer == 0xDEAD_BEEF && root["e"]?.integer == 0o755 && root["f"]?.integer == 0b1101)
        #expect(root["g"]?.integer == .max && root["h"]?.integer == .min)
        #expect(root["i"]?.float == 6.626e-34 && root["j"]?.float == 0 && root["k"]?.float == 1e6)
        #expect(root["l"]?.float == .infinity && root["m"]?.float?.isNaN == true)
        #expect(root["n"]?.kind.dateTimeText == "1979-05-27T07:32:00Z")
        #expect(root["o"]?.kind.dateTimeText == "1979-05-27 00:32:00.999999-07:00")
        #expect(root["p"]?.kind.dateTimeText == "1979-05-27" && root["q"]?.kind.dateTimeText == "07:32:00")
        #expect(root["r"]?.typeDescription == "a date-time")
    }

    /// Each malformed document is refused at the place of the fault, with a message that says what is wrong.
    @Test(arguments: [
        ("[[[broken\n", 1, 3, "expected a key"),
        ("[a\nb = 1\n", 1, 3, "']' to close the table header"),
        ("[[a]\n", 1, 5, "']]'"),
        ("[]\n", 1, 2, "expected a key"),
        ("a = 1\na = 2\n", 2, 1, "defined twice (first on line 1)"),
        ("[t]\n[t]\n", 2, 2, "defined twice"),
        ("a = 1\n[a]\n", 2, 2, "defined twice"),
        ("[a]\nb.c = 1\n[a.b]\n", 3, 4, "defined twice"),
        ("a = [1]\n[[a]]\n", 2, 3, "not an array of tables"),
        ("[[a]]\n[a]\n", 2, 2, "defined twice"),
        ("a = {b = 1}\n[a.c]\n", 2, 2, "no table can be defined inside it"),
        ("a = {b = 1}\na.c = 2\n", 2, 1, "a dotted key cannot add to 'a'"),
        ("[x.y]\n[x]\ny.z = 1\n", 3, 1, "a dotted key cannot add to 'y'"),
        ("a = 1 b = 2\n", 1, 7, "expected the end of the line"),
        ("a = \n", 1, 5, "expected a value"),
        ("a\n", 1, 2, "'=' after the key"),
        ("= 1\n", 1, 1, "expected a key"),
        ("a = localhost:80\n", 1, 5, "is not a value: strings need quotes"),
        ("a = \"open\nb = 1\n", 1, 10, "not closed on its line"),
        ("a = \"\"\"never closed\n", 2, 1, "not closed"),
        ("a = '''x''''''\n", 1, 9, "quotes in a row"),
        ("a = \"\\q\"\n", 1, 6, "unknown escape \\q"),
        ("a = \"\\uD800\"\n", 1, 6, "not a Unicode scalar value"),
        ("a = \"\\u12\"\n", 1, 6, "needs 4 hexadecimal digits"),
        ("a = \"bell\u{07}\"\n", 1, 10, "control character"),
        ("a = 1 # bell\u{07}\n", 1, 13, "control character"),
        ("a = 01\n", 1, 5, "leading zeros"),
        ("a = 1__0\n", 1, 5, "is not a value"),
        ("a = _1\n", 1, 5, "is not a value"),
        ("a = 1.\n", 1, 5, "is not a value"),
        ("a = .5\n", 1, 5, "is not a value"),
        ("a = +0x10\n", 1, 5, "a sign is not allowed"),
        ("a = 9223372036854775808\n", 1, 5, "does not fit in a 64-bit integer"),
        ("a = 0x1_0000_0000_0000_0000\n", 1, 5, "does not fit"),
        ("a = 1e400\n", 1, 5, "out of the range of a 64-bit float"),
        ("a = 2023-02-29\n", 1, 13, "not a valid day"),
        ("a = 1979-13-01\n", 1, 10, "not a valid month"),
        ("a = 1979-05-27T25:00:00\n", 1, 16, "not a valid hour"),
        ("a = 07:32\n", 1, 10, "seconds"),
        ("a = [1 2]\n", 1, 8, "',' or ']'"),
        ("a = [1,,2]\n", 1, 8, "expected a value"),
        ("a = {b = 1,}\n", 1, 12, "expected a key"),
        ("a = {b = 1\n}\n", 1, 11, "must be on one line"),
        ("a = {b = 1, b = 2}\n", 1, 13, "defined twice"),
        ("a = tru\n", 1, 5, "is not a value"),
        ("a = 1\r\n\rb = 2\n", 2, 1, "carriage return"),
        ("k = \"\"\"a\"\"\"\"\"\"\n", 1, 9, "quotes in a row"),
    ] as [(String, Int, Int, String)])
    func malformedDocumentsAreRefusedWithTheirPlace(text: String, line: Int, column: Int, message: String) {
        do {
            let root = try TOMLParser.parse(text)
            Issue.record("accepted \(text.debugDescription) as \(root.keys)")
        } catch {
            #expect(error.line == line && error.column == column, "\(text.debugDescription): \(error)")
            #expect(error.message.contains(message), "\(text.debugDescription): \(error)")
        }
    }

    /// Nesting is bounded, so no input can take the parser down the stack.
    @Test func deepNestingIsRefusedNotFollowed() {
        for opener in ["[", "{a="] {
            let text = "a = " + String(repeating: opener, count: 100_000)
            #expect(throws: TOMLParseError.self) { try TOMLParser.parse(text) }
        }
        let deepest = "a = " + String(repeating: "[", count: TOMLParser.maxNesting) + String(repeating: "]", count: TOMLParser.maxNesting)
        #expect(throws: Never.self) { try TOMLParser.parse(deepest) }
    }

    @Test func bytesThatAreNotUTF8AreRefusedWithTheirLine() {
        #expect(throws: TOMLParseError(line: 2, column: 6, message: "the file is not valid UTF-8")) {
            try TOMLParser.parse(bytes: Array("a = 1\nb = \"".utf8) + [0xFF, 0x22, 0x0A])
        }
    }
}

extension TOMLValue.Kind {
    fileprivate var dateTimeText: String? { if case .dateTime(let text) = self { text } else { nil } }
}
