/// Headers, keys and the rules of which table a header or a dotted key may define or extend.
extension TOMLParser {
    struct KeySegment {
        var name: String
        var line: Int
        var column: Int
    }

    /// `[a.b]` or `[[a.b]]`: makes (or for `[[...]]` appends) the table that the lines below fill.
    mutating func parseHeader() throws(TOMLParseError) {
        let (headerLine, headerColumn) = (line, column)
        index += 1
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { index += 1 }
        let key = try parseKey()
        try expect(UInt8(ascii: "]"), isArray ? "']]' to close the array-of-tables header" : "']' to close the table header")
        if isArray { try expect(UInt8(ascii: "]"), "']]' to close the array-of-tables header") }
        let path = key.map(\.name).joined(separator: ".")

        var table = root
        for segment in key.dropLast() { table = try descend(table, into: segment) }
        let last = key[key.count - 1]
        let existing = table.entry(last.name)
        if isArray {
            if let existing, !table.isTableArray(last.name) {
                throw Self.error(
                    at: last, "'\(path)' is already \(existing.typeDescription) (line \(existing.line)), not an array of tables")
            }
            let element = TOMLTable(origin: .header, line: headerLine)
            table.appendToTableArray(last.name, element, line: headerLine, column: headerColumn)
            current = element
            return
        }
        guard let existing else {
            let defined = TOMLTable(origin: .header, line: headerLine)
            table.set(last.name, TOMLValue(kind: .table(defined), line: headerLine, column: headerColumn))
            current = defined
            return
        }
        // Only a table that an earlier header made exist on its way (`[a.b]` makes `a`) may be defined now.
        guard let defined = existing.table, defined.origin == .implicit, !table.isTableArray(last.name) else {
            throw Self.error(at: last, "'\(path)' is defined twice (first on line \(existing.line))")
        }
        defined.origin = .header
        defined.line = headerLine
        table.set(last.name, TOMLValue(kind: .table(defined), line: headerLine, column: headerColumn))
        current = defined
    }

    /// One step of a header's path: into a table (made if missing) or the last table of an array of tables.
    private func descend(_ table: TOMLTable, into segment: KeySegment) throws(TOMLParseError) -> TOMLTable {
        guard let existing = table.entry(segment.name) else {
            let made = TOMLTable(origin: .implicit, line: segment.line)
            table.set(segment.name, TOMLValue(kind: .table(made), line: segment.line, column: segment.column))
            return made
        }
        if let last = table.lastOfTableArray(segment.name) { return last }
        guard let next = existing.table, next.origin != .inline else {
            throw Self.error(
                at: segment, "'\(segment.name)' is \(existing.typeDescription) (line \(existing.line)), so no table can be defined inside it")
        }
        return next
    }

    /// `key = value`, where a dotted key makes or extends the tables on its way.
    mutating func parseKeyValue(into table: TOMLTable) throws(TOMLParseError) {
        let key = try parseKey()
        try expect(UInt8(ascii: "="), "'=' after the key")
        skipBlanks()
        var target = table
        for segment in key.dropLast() {
            if let existing = target.entry(segment.name) {
                guard let next = existing.table, next.origin == .dotted, !target.isTableArray(segment.name) else {
                    throw Self.error(
                        at: segment,
                        "a dotted key cannot add to '\(segment.name)': it is \(existing.typeDescription) defined on line \(existing.line)")
                }
                target = next
            } else {
                let made = TOMLTable(origin: .dotted, line: segment.line)
                target.set(segment.name, TOMLValue(kind: .table(made), line: segment.line, column: segment.column))
                target = made
            }
        }
        let last = key[key.count - 1]
        if let existing = target.entry(last.name) {
            throw Self.error(at: last, "'\(key.map(\.name).joined(separator: "."))' is defined twice (first on line \(existing.line))")
        }
        let value = try parseValue(line: key[0].line, column: key[0].column)
        target.set(last.name, value)
    }

    /// A bare, quoted or dotted key; blanks around the dots are allowed.
    mutating func parseKey() throws(TOMLParseError) -> [KeySegment] {
        var segments: [KeySegment] = []
        while true {
            skipBlanks()
            let (segmentLine, segmentColumn) = (line, column)
            let name: String
            switch peek() {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                if peek(1) == peek() && peek(2) == peek() { throw error("a key cannot be a multi-line string") }
                name = try parseString()
            case let byte? where Self.isBareKeyByte(byte):
                let start = index
                while let byte = peek(), Self.isBareKeyByte(byte) { index += 1 }
                name = String(decoding: bytes[start..<index], as: UTF8.self)
            default:
                throw error("expected a key, found \(found)")
            }
            segments.append(KeySegment(name: name, line: segmentLine, column: segmentColumn))
            skipBlanks()
            guard peek() == UInt8(ascii: ".") else { return segments }
            index += 1
        }
    }

    static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    static func error(at segment: KeySegment, _ message: String) -> TOMLParseError {
        TOMLParseError(line: segment.line, column: segment.column, message: message)
    }

    // MARK: Values

    mutating func parseValue(line valueLine: Int, column valueColumn: Int) throws(TOMLParseError) -> TOMLValue {
        let kind: TOMLValue.Kind
        switch peek() {
        case UInt8(ascii: "\""), UInt8(ascii: "'"): kind = .string(try parseString())
        case UInt8(ascii: "t") where bytes[index...].starts(with: "true".utf8): index += 4; kind = .boolean(true)
        case UInt8(ascii: "f") where bytes[index...].starts(with: "false".utf8): index += 5; kind = .boolean(false)
        case UInt8(ascii: "["): kind = .array(try parseArray())
        case UInt8(ascii: "{"): kind = .table(try parseInlineTable())
        case nil, UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"): throw error("expected a value, found \(found)")
        default: kind = try parseNumberOrDateTime()
        }
        return TOMLValue(kind: kind, line: valueLine, column: valueColumn)
    }

    private mutating func enterNesting() throws(TOMLParseError) {
        nesting += 1
        guard nesting <= Self.maxNesting else {
            throw error("arrays and inline tables are nested more than \(Self.maxNesting) deep")
        }
    }

    /// `[ value, value, ]`: may span lines and hold comments; a trailing comma is allowed.
    mutating func parseArray() throws(TOMLParseError) -> [TOMLValue] {
        try enterNesting()
        defer { nesting -= 1 }
        index += 1
        var elements: [TOMLValue] = []
        while true {
            try skipBlanksCommentsAndNewlines()
            if peek() == UInt8(ascii: "]") { break }
            elements.append(try parseValue(line: line, column: column))
            try skipBlanksCommentsAndNewlines()
            if peek() == UInt8(ascii: "]") { break }
            try expect(UInt8(ascii: ","), "',' or ']' after an element of the array")
        }
        index += 1
        return elements
    }

    /// `{ key = value, ... }`: on one line, no trailing comma, complete as written.
    mutating func parseInlineTable() throws(TOMLParseError) -> TOMLTable {
        try enterNesting()
        defer { nesting -= 1 }
        let table = TOMLTable(origin: .inline, line: line)
        index += 1
        skipBlanks()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return table
        }
        while true {
            try parseKeyValue(into: table)
            skipBlanks()
            if peek() == UInt8(ascii: "}") { break }
            try expect(UInt8(ascii: ","), "',' or '}' in the inline table (which must be on one line)")
        }
        index += 1
        return table
    }
}
