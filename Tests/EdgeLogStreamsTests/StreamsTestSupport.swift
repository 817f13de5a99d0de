@testable import EdgeLogStreams

/// Runs a query over fixture lines on virtual time and returns the output lines.
func run(_ query: String, _ fixture: [String], closeAtEnd: Bool = true) throws -> VirtualTimeRun.Result {
    let plan = try ProcessorPlan.make(query)
    return try VirtualTimeRun(plan: plan, closeAtEnd: closeAtEnd).run(fixture: fixture.joined(separator: "\n"))
}

/// A fixture line: a JSON value on topic `sensors` at `ms`.
func reading(_ key: String, _ value: String, at ms: Int64, topic: String = "sensors", partition: Int = 0) -> String {
    #"{"topic":"\#(topic)","partition":\#(partition),"key":"\#(key)","value":\#(value),"timestamp":\#(ms)}"#
}

/// The output lines' values, keys or topics, parsed.
func members(_ line: String) -> [String: StreamValue] {
    Dictionary(Array(line.utf8).withUnsafeBytes { JSONPathReader.members($0) }.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
}

func value(_ line: String) -> [String: StreamValue] {
    guard case .json(let text)? = members(line)["value"] else { return [:] }
    return members(text)
}

func key(_ line: String) -> String? { members(line)["key"]?.text }
func topic(_ line: String) -> String? { members(line)["topic"]?.text }
