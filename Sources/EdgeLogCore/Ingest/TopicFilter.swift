/// An MQTT route's filter: MQTT topic levels where `+` and `#` are MQTT's wildcards and
/// `{name}` matches one level like `+` and captures it for the key template.
///
///     sensors/{site}/{device}/#   subscribes to sensors/+/+/#
///     matches sensors/plant-3/pump-7/temperature with site = plant-3, device = pump-7
public struct TopicFilter: Sendable, Equatable, CustomStringConvertible {
    enum Level: Sendable, Equatable {
        case literal(String)
        case single(capture: String?)
        case multi
    }

    let levels: [Level]
    public let description: String

    public init(_ pattern: String) throws(TopicFilterError) {
        guard !pattern.isEmpty else { throw TopicFilterError("an empty filter") }
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var levels: [Level] = []
        for (index, part) in parts.enumerated() {
            if part == "#" {
                guard index == parts.count - 1 else { throw TopicFilterError("'#' must be the last level") }
                levels.append(.multi)
            } else if part == "+" {
                levels.append(.single(capture: nil))
            } else if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                let name = String(part.dropFirst().dropLast())
                guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                    throw TopicFilterError("'{\(name)}' is not a valid capture name")
                }
                levels.append(.single(capture: name))
            } else {
                guard !part.contains("+") && !part.contains("#") && !part.contains("{") && !part.contains("}") else {
                    throw TopicFilterError("'\(part)': wildcards must fill a whole level")
                }
                levels.append(.literal(part))
            }
        }
        self.levels = levels
        self.description = pattern
    }

    /// The filter to subscribe with: captures become `+`.
    public var subscription: String {
        levels.map { level in
            switch level {
            case .literal(let text): text
            case .single: "+"
            case .multi: "#"
            }
        }.joined(separator: "/")
    }

    public var captureNames: [String] {
        levels.compactMap { if case .single(let capture?) = $0 { capture } else { nil } }
    }

    /// The captured levels if `topic` matches, else nil. Like MQTT, a filter starting with a
    /// wildcard does not match topics starting with `$`.
    public func match(_ topic: String) -> [String: String]? {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        if topic.hasPrefix("$") {
            guard case .literal = levels.first else { return nil }
        }
        var captures: [String: String] = [:]
        for (index, level) in levels.enumerated() {
            switch level {
            case .multi:
                return captures
            case .literal(let text):
                guard index < parts.count, parts[index] == text else { return nil }
            case .single(let capture):
                guard index < parts.count else { return nil }
                if let capture { captures[capture] = String(parts[index]) }
            }
        }
        return parts.count == levels.count ? captures : nil
    }
}

public struct TopicFilterError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// A record key built from a route's captures: `{device}`, `{site}-{device}`, or literal text.
public struct KeyTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case text(String)
        case capture(String)
    }

    let parts: [Part]
    public let description: String

    public init(_ template: String, captures available: [String]) throws(TopicFilterError) {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw TopicFilterError("unclosed '{' in key template '\(template)'")
            }
            let name = String(rest[rest.index(after: open)..<close])
            guard available.contains(name) else {
                throw TopicFilterError(
                    "key template uses {\(name)}, but the filter captures only \(available.map { "{\($0)}" }.joined(separator: ", "))")
            }
            parts.append(.capture(name))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        self.parts = parts
        self.description = template
    }

    public func render(_ captures: [String: String]) -> String {
        var key = ""
        for part in parts {
            switch part {
            case .text(let text): key += text
            case .capture(let name): key += captures[name] ?? ""
            }
        }
        return key
    }
}
