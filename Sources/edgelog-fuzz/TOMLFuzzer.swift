import EdgeLogTOML

/// The configuration file's parser: any bytes either parse or are refused with a line and
/// column inside the input. The parser's nesting bound keeps deep inputs off the stack.
enum TOMLFuzzer: FuzzTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        do {
            _ = try TOMLParser.parse(bytes: bytes)
        } catch {
            let lines = bytes.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            precondition((1...lines).contains(error.line) && error.column >= 1, "error outside the input: \(error)")
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        [
            ("tables", "[a]\nb = 1\n[a.c]\nd = 'x'\n[[e]]\nf = [1, 2.5, -3e2]\n[[e]]\ng = { h = true, i.j = 0x1F }\n"),
            ("strings", "s = \"\\u00e9\\t\"\nm = \"\"\"\nline \\\n  joined\"\"\"\nl = '''\nraw\\n'''\n"),
            ("dates", "a = 1979-05-27T07:32:00Z\nb = 1979-05-27 07:32:00.999-07:00\nc = 1979-05-27\nd = 07:32:00\n"),
            ("numbers", "a = +1_000\nb = 0o755\nc = 0b1010\nd = -inf\ne = nan\nf = 6.626e-34\n"),
            ("dotted", "a.b.c = 1\na.b.d = 2\n[x.y]\nz = [[1], [\"a\"], [{ k = 'v' }]]\n"),
        ].map { ($0.0, Array($0.1.utf8)) }
    }
}
