/// Runs a processor over a fixture on virtual time, without a daemon: what
/// `edgelog streams test` does. Deterministic: the same query and fixture give the same output,
/// byte for byte, on any machine at any hour.
///
/// The fixture is NDJSON, one record a line:
/// `{"topic": "sensors", "partition": 0, "key": "dev-1", "value": {...}, "timestamp": 1700000000000, "headers": {"h": "v"}}`
/// (`topic` defaults to the query's first input, `partition` to 0, `timestamp` to the previous
/// line's, `offset` to the line's position in its partition). Two kinds of control line move
/// virtual time: `{"wall_clock": ms}` sets the wall clock (it otherwise follows the greatest
/// record timestamp so far), and `{"idle": true}` tells the processor every input has been
/// read to its end and stayed idle (`{"idle": {"topic": "t", "partition": 0}}` for one).
/// At the end of the fixture every window closes, unless `closeAtEnd` is false.
public struct VirtualTimeRun {
    public struct FixtureError: Error, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "fixture line \(line): \(message)" }
    }

    public struct Result: Sendable {
        /// One NDJSON line per output record, in order.
        public var lines: [String]
        public var metrics: ProcessorMetrics
    }

    public let plan: ProcessorPlan
    public var closeAtEnd = true

    public init(plan: ProcessorPlan, closeAtEnd: Bool = true) {
        self.plan = plan
        self.closeAtEnd = closeAtEnd
    }

    public func run(fixture: String) throws(FixtureError) -> Result {
        let processor = StreamProcessor(plan: plan)
        var outputs: [StreamOutput] = []
        var lines: [String] = []
        var wallClockMs = Int64.min
        var lastTimestampMs: Int64 = 0
        var nextOffset: [StreamProcessor.InputPartition: Int64] = [:]
        func drain() {
            for output in outputs { lines.append(Self.line(output, plan: plan)) }
            outputs.removeAll(keepingCapacity: true)
        }
        for (index, text) in fixture.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let trimmed = text.trimmed(leading: true, trailing: true)
            if trimmed.isEmpty { continue }
            let members = Array(trimmed.utf8).withUnsafeBytes { JSONPathReader.members($0) }
            guard !members.isEmpty else { throw FixtureError(line: lineNumber, message: "not a JSON object") }
            let fields = Dictionary(members.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
            if let clock = fields["wall_clock"] {
                guard let ms = clock.int else { throw FixtureError(line: lineNumber, message: "wall_clock must be milliseconds") }
                wallClockMs = ms
                continue
            }
            if let idle = fields["idle"] {
                var targets = Set(nextOffset.keys)
                for input in plan.inputs where !targets.contains(where: { $0.topic == input }) {
                    targets.insert(.init(topic: input, partition: 0))
                }
                if case .json(let which) = idle {
                    let named = Dictionary(Array(which.utf8).withUnsafeBytes { JSONPathReader.members($0) }.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
                    targets = [.init(topic: named["topic"]?.text ?? plan.inputs[0], partition: Int32(clamping: named["partition"]?.int ?? 0))]
                }
                for target in targets.sorted() {
                    processor.markIdle(topic: target.topic, partition: target.partition, wallClockMs: wallClockMs, into: &outputs)
                }
                drain()
                continue
            }
            let topic = fields["topic"].map(\.text) ?? plan.inputs[0]
            guard plan.inputs.contains(topic) else {
                throw FixtureError(line: lineNumber, message: "topic \(topic) is not an input of the query (\(plan.inputs.joined(separator: ", ")))")
            }
            guard let partition = Int32(exactly: fields["partition"]?.int ?? 0), partition >= 0 else {
                throw FixtureError(line: lineNumber, message: "partition must be a small non-negative number")
            }
            if let timestamp = fields["timestamp"] {
                guard let ms = timestamp.int else { throw FixtureError(line: lineNumber, message: "timestamp must be milliseconds") }
                lastTimestampMs = ms
            }
            let input = StreamProcessor.InputPartition(topic: topic, partition: partition)
            let offset = fields["offset"]?.int ?? nextOffset[input, default: 0]
            nextOffset[input] = offset + 1
            let record = StreamRecord(
                topic: topic, partition: partition, offset: offset, timestampMs: lastTimestampMs,
                key: Self.bytes(fields["key"]), value: Self.bytes(fields["value"]), headers: Self.headers(fields["headers"]))
            wallClockMs = max(wallClockMs, lastTimestampMs)
            guard processor.process(record, wallClockMs: wallClockMs, into: &outputs) == .consumed else {
                throw FixtureError(line: lineNumber, message: "the processor paused at its state bound (ON_STATE_FULL = 'pause') and virtual time has nothing to close")
            }
            drain()
        }
        if closeAtEnd { processor.closeAll(into: &outputs) }
        drain()
        return Result(lines: lines, metrics: processor.metrics)
    }

    static func bytes(_ value: StreamValue?) -> [UInt8]? {
        switch value {
        case nil, .null?: nil
        case .string(let text)?: Array(text.utf8)
        case let other?: Array(other.jsonText.utf8)
        }
    }

    static func headers(_ value: StreamValue?) -> [StreamRecord.Header] {
        guard case .json(let text)? = value else { return [] }
        return Array(text.utf8).withUnsafeBytes { JSONPathReader.members($0) }.map { .init(key: $0.name, value: bytes($0.value)) }
    }

    /// An output record as a fixture line: its topic, key, value (as JSON when it is JSON),
    /// timestamp and headers.
    static func line(_ output: StreamOutput, plan: ProcessorPlan) -> String {
        let topic: String
        switch output.destination {
        case .output: topic = plan.outputTopic
        case .deadLetter: topic = plan.deadLetterTopic
        case .late:
            if case .sideTopic(let side) = plan.latePolicy { topic = side } else { topic = plan.outputTopic + ".late" }
        }
        var fields: [(name: String, value: StreamValue)] = [("topic", .string(topic))]
        fields.append(("key", output.key.map { CompiledExpression.text($0) } ?? .null))
        fields.append(("value", output.value.map { bytes in bytes.withUnsafeBytes { JSONPathReader.document($0) } } ?? .null))
        fields.append(("timestamp", .int(output.timestampMs)))
        if !output.headers.isEmpty {
            var writer = StreamJSONWriter()
            writer.object(output.headers.map { ($0.key, CompiledExpression.text($0.value)) })
            fields.append(("headers", .json(writer.text)))
        }
        var writer = StreamJSONWriter()
        writer.object(fields)
        return writer.text
    }
}

extension VirtualTimeRun {
    /// Compares output lines with expected ones: the same number, and each the same topic, key
    /// and value (objects compared whatever their members' order, 1 and 1.0 alike), and the
    /// same timestamp and headers where the expected line gives them. Returns the differences,
    /// each naming its line.
    public static func differences(actual: [String], expected: String) -> [String] {
        let wanted = expected.split(separator: "\n").map { $0.trimmed(leading: true, trailing: true) }.filter { !$0.isEmpty }
        var differences: [String] = []
        for index in 0..<max(wanted.count, actual.count) {
            guard index < wanted.count else {
                differences.append("output line \(index + 1) was not expected: \(actual[index])")
                continue
            }
            guard index < actual.count else {
                differences.append("expected line \(index + 1) is missing: \(wanted[index])")
                continue
            }
            let want = fields(String(wanted[index]))
            let got = fields(actual[index])
            for name in ["topic", "key", "value", "timestamp", "headers"] where name == "topic" || name == "key" || name == "value" || want[name] != nil {
                if canonical(want[name] ?? .null) != canonical(got[name] ?? .null) {
                    differences.append("line \(index + 1): \(name) is \((got[name] ?? .null).jsonText), expected \((want[name] ?? .null).jsonText)")
                }
            }
        }
        return differences
    }

    private static func fields(_ line: String) -> [String: StreamValue] {
        Dictionary(Array(line.utf8).withUnsafeBytes { JSONPathReader.members($0) }.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }

    /// A value's JSON with object members sorted and integral numbers written as integers.
    static func canonical(_ value: StreamValue) -> String {
        switch value {
        case .double(let number) where number.rounded() == number && abs(number) < 1e15: return String(Int64(number))
        case .json(let text):
            let bytes = Array(text.utf8)
            if text.hasPrefix("{") {
                let members = bytes.withUnsafeBytes { JSONPathReader.members($0) }.sorted { $0.name < $1.name }
                return "{" + members.map { StreamValue.string($0.name).jsonText + ":" + canonical($0.value) }.joined(separator: ",") + "}"
            }
            let count = Int(bytes.withUnsafeBytes { JSONPathReader.arrayCount($0) } ?? 0)
            let items = (0..<count).map { index in
                canonical(bytes.withUnsafeBytes { JSONPathReader.value(in: $0, at: [.index(index)]) })
            }
            return "[" + items.joined(separator: ",") + "]"
        default: return value.jsonText
        }
    }
}
