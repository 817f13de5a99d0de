public import EdgeLogStorage
public import EdgeLogCore

/// Where MQTT ingest appends records: the `Ingestor` in the daemon, a stand-in in tests (one
/// that fails on purpose, say). The records of one call go to one topic and are committed, or
/// refused, together.
package protocol MQTTRecordSink: Sendable {
    func append(topic: String, records: [Record]) async throws(IngestError) -> [RecordPosition]
}

extension Ingestor: MQTTRecordSink {
    package func append(topic: String, records: [Record]) async throws(IngestError) -> [RecordPosition] {
        try await append(topic: topic, records: records, partitions: nil, source: .mqtt)
    }
}
