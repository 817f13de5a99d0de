/// Where each key of a TOML document is defined, by line, so that errors found after parsing
/// (a wrong type, an unknown key, a bad value) can name the line. Tracks `[table]` and
/// `[[array]]` headers and `key = value` lines; keys of inline tables fall back to the line of
/// the key that holds them.
struct TOMLSourceMap {
    private var lines: [String: Int] = [:]

    init(_ text: String) {
        var section = ""
        var arrayCounts: [String: Int] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            let number = index + 1
            if line.hasPrefix("[[") {
                let name = String(line.dropFirst(2).prefix { $0 != "]" }).trimmingWhitespace()
                let position = arrayCounts[name, default: 0]
                arrayCounts[name] = position + 1
                section = "\(name)[\(position)]"
                lines[section] = number
            } else if line.hasPrefix("[") {
                section = String(line.dropFirst().prefix { $0 != "]" }).trimmingWhitespace()
                lines[section] = number
            } else if let equals = line.firstIndex(of: "="), !line.hasPrefix("#") {
                var key = String(line[..<equals]).trimmingWhitespace()
                if key.hasPrefix("\"") && key.hasSuffix("\"") && key.count >= 2 { key = String(key.dropFirst().dropLast()) }
                lines[section.isEmpty ? key : section + "." + key] = number
            }
        }
    }

    /// The line of `path` ("http.port", "mqtt.brokers[1].host"), or of its closest parent.
    func line(of path: String) -> Int? {
        var candidate = path
        while true {
            if let line = lines[candidate] { return line }
            guard let cut = candidate.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            candidate = String(candidate[..<cut])
        }
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
