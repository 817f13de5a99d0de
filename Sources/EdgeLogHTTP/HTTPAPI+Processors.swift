import EdgeLogCore
public import EdgeLogStreams
import Foundation
import Hummingbird
import NIOCore

/// The stream processor API (behind the same bearer token as the rest):
///
///     GET    /v1/processors          every processor's status
///     POST   /v1/processors          {"query": "CREATE STREAM name AS SELECT ..."}: plan, save, start
///     GET    /v1/processors/{name}   status: phase, positions and lag, metrics, commits, recovery
///     DELETE /v1/processors/{name}   stop and forget (its output topics stay)
///     POST   /v1/processors/test     {"query": ..., "input": "<ndjson>"}: a run on virtual time,
///                                    no daemon state touched (what `edgelog streams test` does)
extension HTTPAPI {
    func addProcessorRoutes(_ router: Router<BasicRequestContext>, _ runtime: StreamsRuntime) {
        router.get("v1/processors") { _, _ in
            Self.jsonBody(.ok) { json in
                json.beginArray()
                for (status, origin) in runtime.statuses() { Self.write(status, origin: origin, &json) }
                json.endArray()
            }
        }
        router.post("v1/processors") { request, _ in
            struct Body: Decodable { var query: String? }
            let body = try await Self.decode(Body.self, request)
            guard let query = body.query, !query.isEmpty else { throw APIError(.badRequest, "missing_query", "the body needs \"query\"") }
            let status = try Self.streams { try runtime.create(query: query) }
            return Self.jsonBody(.created) { Self.write(status, origin: .api, &$0) }
        }
        router.post("v1/processors/test") { request, _ in
            struct Body: Decodable {
                var query: String?
                var input: String?
            }
            let body = try await Self.decode(Body.self, request)
            guard let query = body.query, !query.isEmpty else { throw APIError(.badRequest, "missing_query", "the body needs \"query\"") }
            let result = try Self.streams { try VirtualTimeRun(plan: try ProcessorPlan.make(query)).run(fixture: body.input ?? "") }
            let ndjson = result.lines.map { $0 + "\n" }.joined()
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: .init(byteBuffer: ByteBuffer(string: ndjson)))
        }
        router.get("v1/processors/:name") { _, context in
            let name = try context.parameters.require("name")
            let (status, origin) = try Self.streams { try runtime.status(name) }
            return Self.jsonBody(.ok) { Self.write(status, origin: origin, &$0) }
        }
        router.delete("v1/processors/:name") { _, context in
            let name = try context.parameters.require("name")
            do { try await runtime.drop(name) } catch let error as StreamsRuntimeError { throw Self.apiError(error) }
            return Response(status: .noContent)
        }
    }

    static func streams<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StreamsRuntimeError {
            throw apiError(error)
        } catch let error as StreamQueryError {
            throw APIError(.badRequest, "invalid_query", error.description)
        } catch let error as VirtualTimeRun.FixtureError {
            throw APIError(.badRequest, "invalid_fixture", error.description)
        }
    }

    static func write(_ status: ProcessorStatus, origin: StreamsRuntime.Origin, _ json: inout JSONWriter) {
        json.beginObject()
        json.field("name", status.name)
        json.field("state", status.phase.rawValue)
        json.field("query", status.query)
        json.field("defined_in", origin.rawValue)
        json.key("inputs")
        json.beginArray()
        for input in status.inputs { json.string(input) }
        json.endArray()
        json.field("output_topic", status.outputTopic)
        if let error = status.lastError { json.field("last_error", error) }
        json.field("errors", status.errors)
        json.field("lag_records", status.lagRecords)
        json.key("positions")
        json.beginArray()
        for position in status.positions {
            json.beginObject()
            json.field("topic", position.topic)
            json.field("partition", position.partition)
            json.field("next_offset", position.nextOffset)
            json.field("end_offset", position.endOffset)
            json.endObject()
        }
        json.endArray()
        let metrics = status.metrics
        json.key("metrics")
        json.beginObject()
        json.field("records_in", metrics.recordsIn)
        json.field("records_out", metrics.recordsOut)
        json.field("filtered", metrics.filtered)
        json.field("late", metrics.late)
        json.field("late_dropped", metrics.lateDropped)
        json.field("late_to_side_topic", metrics.lateToSideTopic)
        json.field("late_updates", metrics.lateUpdates)
        json.field("dead_lettered", metrics.deadLettered)
        json.field("deduplicated", metrics.deduplicated)
        json.field("throttled", metrics.throttled)
        json.field("deadbanded", metrics.deadbanded)
        json.field("evictions", metrics.evictions)
        json.field("dropped_new_keys", metrics.droppedNewKeys)
        json.field("pauses", metrics.pauses)
        json.field("keys", metrics.keys)
        json.field("open_windows", metrics.openWindows)
        json.field("state_bytes", metrics.stateBytes)
        json.field("estimated_max_state_bytes", status.estimatedStateBytes)
        if let watermark = metrics.watermarkMs { json.field("watermark_ms", watermark) }
        json.endObject()
        json.field("commits", status.commits)
        if let commitMs = status.lastCommitMs {
            json.key("last_commit_ms")
            json.raw(ByteBuffer(string: String(format: "%.3f", commitMs)))
        }
        json.field("snapshots", status.snapshots)
        json.field("last_snapshot_bytes", status.lastSnapshotBytes)
        json.key("recovery")
        json.beginObject()
        json.field("commits_replayed", status.replayedCommits)
        json.field("outputs_restored", status.restoredOutputs)
        if let recoveryMs = status.recoveryMs {
            json.key("ms")
            json.raw(ByteBuffer(string: String(format: "%.3f", recoveryMs)))
        }
        json.field("replay_mismatches", status.replayMismatches)
        json.endObject()
        json.field("skipped_input_records", status.skippedInputRecords)
        json.endObject()
    }
}
