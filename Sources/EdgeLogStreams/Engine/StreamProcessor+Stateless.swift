extension StreamProcessor {
    /// A filtered record reshaped: its value the SELECT's columns (after the value's own
    /// members with `*`), its key the PARTITION BY value or its own, its headers kept, its
    /// timestamp the event time.
    func project(
        _ record: StreamRecord, _ eventTimeMs: Int64, _ columns: [ProcessorPlan.OutputColumn], star: Bool, passThrough: Bool,
        partitionBy: CompiledExpression?
    ) -> StreamOutput {
        let key: [UInt8]?
        if let partitionBy {
            let value = partitionBy.evaluate(context)
            key = value.isNull ? nil : Array(value.text.utf8)
        } else {
            key = record.key
        }
        if passThrough {
            return StreamOutput(destination: .output, key: key, value: record.value, timestampMs: eventTimeMs, headers: record.headers)
        }
        var fields: [(name: String, value: StreamValue)] = []
        if star, let value = record.value {
            fields = value.withUnsafeBytes { JSONPathReader.members($0) }
        }
        for column in columns {
            let value = column.expression.evaluate(context)
            if star, let existing = fields.firstIndex(where: { $0.name == column.name }) {
                fields[existing].value = value
            } else {
                fields.append((column.name, value))
            }
        }
        var writer = StreamJSONWriter()
        writer.object(fields)
        return StreamOutput(destination: .output, key: key, value: writer.bytes, timestampMs: eventTimeMs, headers: record.headers)
    }
}
