public import EdgeLogCore
import Foundation
public import NIOCore

/// Replication in `/v1/status` (per upstream: in sync, lag, the last error) and in full at
/// `/v1/replication` (every partition's checkpoints and lag).
extension ReplicationService: StatusReporter {
    package var statusSection: String { "replication" }

    package func writeStatus(_ json: inout JSONWriter) {
        json.beginArray()
        for upstream in status() {
            json.beginObject()
            json.field("name", upstream.name)
            json.key("in_sync")
            json.bool(upstream.inSync)
            json.field("lag_records", upstream.lagRecords)
            if let error = upstream.partitions.lazy.compactMap(\.lastError).first { json.field("last_error", error) }
            json.endObject()
        }
        json.endArray()
    }

    package func detailedStatus() throws -> ByteBuffer? {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        struct Body: Encodable { var upstreams: [UpstreamReplicationStatus] }
        return ByteBuffer(bytes: try encoder.encode(Body(upstreams: status())))
    }
}
