public import EdgeLogConnect
import EdgeLogStorage
import Foundation
public import Hummingbird
import NIOCore
public import EdgeLogCore
public import EdgeLogStreams

/// The HTTP API: ingest, reads, topic administration, probes and metrics.
///
///     POST   /v1/topics/{topic}/records                 produce (see RecordsRequestDecoder)
///     GET    /v1/topics/{topic}/partitions/{p}/records  read (?offset=&max_records=&max_bytes=&format=binary)
///     GET    /v1/topics                                 list topics
///     POST   /v1/topics                                 create {"name": "...", "partitions": 3}
///     GET    /v1/topics/{topic}                         describe: partitions, offsets, bytes
///     DELETE /v1/topics/{topic}                         delete with its data
///     GET    /v1/status                                 topics, disk use, phase
///     GET    /healthz, /readyz, /metrics
public struct HTTPAPI: Sendable {
    public struct Settings: Sendable {
        public var maxBodyBytes: Int
        public var authToken: String?
        public init(maxBodyBytes: Int, authToken: String?) {
            self.maxBodyBytes = maxBodyBytes
            self.authToken = authToken
        }
    }

    let ingestor: Ingestor
    let state: DaemonState
    let settings: Settings
    /// Renders the metrics in Prometheus' text format; nil: /metrics is 404.
    let metrics: (@Sendable () -> ByteBuffer)?
    /// The parts that report in /v1/status (sources, sinks), in the order they appear there.
    let reporters: [any StatusReporter]
    let loss: LossRecorder?
    /// The connectors (the API at /connectors); nil: no connector API.
    let connectors: ConnectorRuntime?
    /// The HTTP ingest endpoints open now; nil: /v1/topics/{topic}/records always takes data.
    let endpoints: HTTPIngestEndpoints?
    /// The stream processors (the API at /v1/processors); nil: no processor API.
    let processors: StreamsRuntime?
    let startedAt = Date()

    package init(
        ingestor: Ingestor, state: DaemonState, settings: Settings, reporters: [any StatusReporter] = [],
        loss: LossRecorder? = nil, connectors: ConnectorRuntime? = nil, endpoints: HTTPIngestEndpoints? = nil,
        processors: StreamsRuntime? = nil, metrics: (@Sendable () -> ByteBuffer)?
    ) {
        self.processors = processors
        self.loss = loss
        self.connectors = connectors
        self.endpoints = endpoints
        self.reporters = reporters
        self.ingestor = ingestor
        self.state = state
        self.settings = settings
        self.metrics = metrics
    }

    var manager: LogManager { ingestor.manager }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        if let token = settings.authToken { router.add(middleware: BearerTokenMiddleware(token: token)) }
        router.get("healthz") { _, _ in Self.json(.ok) { $0.field("status", "ok") } }
        router.get("readyz") { _, _ in
            let phase = state.phase
            return Self.json(phase == .ready ? .ok : .serviceUnavailable) { $0.field("status", "\(phase)") }
        }
        router.get("metrics") { _, _ in
            guard let metrics else { throw APIError(.notFound, "no_metrics", "metrics are not enabled") }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: metrics()))
        }
        router.post("v1/topics/:topic/records") { request, context in
            try await produce(request, topic: try context.parameters.require("topic"), endpoint: "http")
        }
        router.post("v1/ingest/:name") { request, context in
            let name = try context.parameters.require("name")
            // Only the endpoints of http-source connectors made for one topic.
            guard let endpoints, case let endpoint = try endpoints.endpoint(name), let topic = endpoint.source.topic else {
                throw APIError(.notFound, "unknown_endpoint", "no HTTP ingest endpoint named '\(name)'")
            }
            return try await produce(request, topic: topic, endpoint: name)
        }
        if let connectors { addConnectorRoutes(router, connectors) }
        if let processors { addProcessorRoutes(router, processors) }
        router.get("v1/topics/:topic/partitions/:partition/records") { request, context in try read(request, context) }
        router.get("v1/topics") { _, _ in listTopics() }
        router.post("v1/topics") { request, _ in try await createTopic(request) }
        router.get("v1/topics/:topic") { _, context in try describe(try context.parameters.require("topic")) }
        router.delete("v1/topics/:topic") { _, context in
            let name = try context.parameters.require("topic")
            do throws(StorageError) { try manager.deleteTopic(name) } catch { throw APIError.from(error) }
            return Response(status: .noContent)
        }
        router.get("v1/status") { _, _ in status() }
        for reporter in reporters {
            router.get("v1/\(reporter.statusSection)") { _, _ in
                guard let document = try reporter.detailedStatus() else {
                    throw APIError(.notFound, "not_found", "no detailed status for \(reporter.statusSection)")
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: document))
            }
        }
        return router
    }

    // MARK: Produce

    /// Appends a request's records to `topic` through the ingest endpoint named `endpoint`
    /// (an `http-source` connector; it must be running).
    func produce(_ request: Request, topic: String, endpoint name: String) async throws -> Response {
        guard state.phase != .stopping else { throw APIError.from(StorageError.closed) }
        let endpoint = try endpoints?.endpoint(name)
        do {
            let (response, records, bytes) = try await produce(request, topic: topic, maxBodyBytes: endpoint?.source.maxBodyBytes ?? settings.maxBodyBytes)
            if let endpoint {
                endpoint.records.add(Int64(records), ordering: .relaxed)
                endpoint.bytes.add(Int64(bytes), ordering: .relaxed)
                endpoint.lastSuccessMs.store(wallClockMs(), ordering: .relaxed)
            }
            return response
        } catch {
            endpoint?.refused.add(1, ordering: .relaxed)
            throw error
        }
    }

    private func produce(_ request: Request, topic: String, maxBodyBytes: Int) async throws -> (Response, records: Int, bytes: Int) {
        let contentType = request.headers[.contentType]
        guard let format = RecordsRequestDecoder.format(contentType: contentType) else {
            throw APIError(
                .unsupportedMediaType, "unsupported_media_type",
                "Content-Type '\(contentType ?? "")' is not one of application/json, application/vnd.kafka.binary.v2+json, application/x-ndjson, application/octet-stream, text/plain")
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(maxBodyBytes) bytes (max_body_bytes)")
        }
        let now = wallClockMs()
        var records: [Record]
        var partitions: [Int32?]? = nil
        if format == .raw {
            let query = request.uri.queryParameters
            let key = query.get("key") ?? request.headers.first(where: { $0.name.canonicalName == "x-edgelog-key" })?.value
            records = [Record(timestamp: now, key: key.map { ByteBuffer(string: $0) }, value: body)]
            if let text = query.get("partition") {
                guard let partition = Int32(text), partition >= 0 else {
                    throw APIError(.badRequest, "invalid_partition", "partition '\(text)' is not a non-negative integer")
                }
                partitions = [partition]
            }
        } else {
            do {
                let decoded = try RecordsRequestDecoder.decode(body, format: format, now: now)
                records = decoded.records
                partitions = decoded.partitions
            } catch {
                guard case .syntax(let syntax, let ndjsonLine) = error else { throw error }
                var api = APIError(.badRequest, "invalid_json", ndjsonLine.map { "line \($0) of the NDJSON body: \(syntax.message)" } ?? syntax.message)
                api.position = (syntax.line, syntax.column, syntax.offset)
                throw api
            }
            guard !records.isEmpty else { throw APIError(.badRequest, "no_records", "the request holds no records") }
        }
        let positions: [RecordPosition]
        do { positions = try await ingestor.append(topic: topic, records: records, partitions: partitions, source: .http) } catch {
            throw APIError.from(error)
        }
        var json = JSONWriter(capacity: 32 + positions.count * 28)
        json.beginObject()
        json.field("topic", topic)
        json.key("offsets")
        json.beginArray()
        for position in positions {
            json.beginObject()
            json.field("partition", position.partition)
            json.field("offset", position.offset)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        let response = Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.buffer))
        return (response, records.count, body.readableBytes)
    }

    // MARK: Read

    func read(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let topicName = try context.parameters.require("topic")
        guard let partitionIndex = Int32(try context.parameters.require("partition")) else {
            throw APIError(.badRequest, "invalid_partition", "the partition must be an integer")
        }
        let log: PartitionLog
        do throws(StorageError) { log = try manager.partition(topic: topicName, partitionIndex) } catch { throw APIError.from(error) }
        let query = request.uri.queryParameters
        let offset = query.get("offset", as: Int64.self) ?? log.logStartOffset
        let maxRecords = min(max(query.get("max_records", as: Int.self) ?? 100, 1), 10_000)
        let maxBytes = min(max(query.get("max_bytes", as: Int.self) ?? 1 << 20, 1), 16 << 20)
        // format=binary: key and value always as base64, for clients that need the exact bytes.
        let binary = query.get("format") == "binary"
        let records: [Record]
        do throws(StorageError) { records = try log.readRecords(from: offset, maxRecords: maxRecords, maxBytes: maxBytes, compressor: BatchCompressor()) } catch {
            throw APIError.from(error)
        }
        var json = JSONWriter(capacity: 64 + records.count * 160)
        json.beginObject()
        json.field("topic", topicName)
        json.field("partition", partitionIndex)
        json.key("records")
        json.beginArray()
        for record in records {
            json.beginObject()
            json.field("offset", record.offset)
            json.field("timestamp", record.timestamp)
            Self.writeBytes(&json, "key", record.key, asJSON: false, binary: binary)
            Self.writeBytes(&json, "value", record.value, asJSON: true, binary: binary)
            if !record.headers.isEmpty {
                json.key("headers")
                json.beginObject()
                for header in record.headers {
                    json.key(header.key)
                    if let value = header.value, let text = value.getString(at: value.readerIndex, length: value.readableBytes) {
                        json.string(text)
                    } else {
                        json.null()
                    }
                }
                json.endObject()
            }
            json.endObject()
        }
        json.endArray()
        let next = records.last.map { $0.offset + 1 } ?? offset
        json.field("next_offset", next)
        json.field("log_end_offset", log.logEndOffset)
        json.endObject()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.buffer))
    }

    /// A key as text when it is UTF-8, a value as JSON when it is valid JSON; otherwise base64 in
    /// `<name>_base64`. So what was posted as JSON reads back as the same JSON.
    static func writeBytes(_ json: inout JSONWriter, _ name: String, _ bytes: ByteBuffer?, asJSON: Bool, binary: Bool) {
        guard let bytes else {
            json.key(binary ? name + "_base64" : name)
            json.null()
            return
        }
        if binary {
            json.field(name + "_base64", Data(bytes.readableBytesView).base64EncodedString())
        } else if asJSON, bytes.withUnsafeReadableBytes({ Self.isJSON($0) }) {
            json.key(name)
            json.raw(bytes)
        } else if !asJSON, let text = bytes.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) {
            json.field(name, text)
        } else {
            json.field(name + "_base64", Data(bytes.readableBytesView).base64EncodedString())
        }
    }

    static func isJSON(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var scanner = JSONScanner(bytes)
        do {
            _ = try scanner.scanValue()
            scanner.skipWhitespace()
            return scanner.isAtEnd
        } catch { return false }
    }

    // MARK: Topics and status

    /// One section per reporter that `include` picks, keyed by its name.
    func writeReports(_ json: inout JSONWriter, where include: (any StatusReporter) -> Bool) {
        for reporter in reporters where include(reporter) {
            json.key(reporter.statusSection)
            reporter.writeStatus(&json)
        }
    }

    func listTopics() -> Response {
        Self.json(.ok) { json in
            writeReports(&json) { $0.showsInTopicList }
            json.key("topics")
            json.beginArray()
            for name in manager.topicNames {
                guard let topic = manager.topic(name) else { continue }
                json.beginObject()
                json.field("name", name)
                json.field("partitions", topic.partitionCount)
                json.endObject()
            }
            json.endArray()
        }
    }

    struct CreateTopicRequest: Decodable {
        var name: String
        var partitions: Int32?
    }

    func createTopic(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        let create: CreateTopicRequest
        do { create = try JSONDecoder().decode(CreateTopicRequest.self, from: Data(body.readableBytesView)) } catch {
            throw APIError(.badRequest, "invalid_json", "expected {\"name\": \"...\", \"partitions\": n}: \(error)")
        }
        do throws(StorageError) {
            try manager.createTopic(create.name, partitions: create.partitions ?? ingestor.defaultPartitions)
        } catch { throw APIError.from(error) }
        var response = try describe(create.name)
        response.status = .created
        return response
    }

    func describe(_ name: String) throws -> Response {
        guard let topic = manager.topic(name) else { throw APIError.from(StorageError.unknownTopic(name)) }
        return Self.json(.ok) { json in
            json.field("name", name)
            json.key("config")
            json.beginObject()
            json.field("codec", topic.config.codec.description)
            json.field("flush", topic.config.flush.description)
            json.field("segment_bytes", topic.config.segmentBytes)
            if let retention = topic.config.retentionMs { json.field("retention_ms", retention) }
            if let retention = topic.config.retentionBytes { json.field("retention_bytes", retention) }
            json.endObject()
            Self.writePartitions(&json, topic)
        }
    }

    /// Offsets, size and health of each partition of `topic`.
    static func writePartitions(_ json: inout JSONWriter, _ topic: Topic) {
        json.key("partitions")
        json.beginArray()
        for log in topic.partitions {
            let offsets = log.offsets
            json.beginObject()
            json.field("partition", log.partition)
            json.field("log_start_offset", offsets.logStartOffset)
            json.field("log_end_offset", offsets.logEndOffset)
            json.field("size_bytes", log.sizeBytes)
            json.field("segments", log.segments.count)
            if let reason = log.fenceReason { json.field("error", reason) }
            json.endObject()
        }
        json.endArray()
    }

    func status() -> Response {
        Self.json(.ok) { json in
            json.field("phase", "\(state.phase)")
            json.field("uptime_seconds", Int(Date().timeIntervalSince(startedAt)))
            json.key("ingest")
            json.beginObject()
            for (source, rate) in ingestor.ratesPerSecond().sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                json.key(source.rawValue)
                json.raw(ByteBuffer(string: String(format: "%.1f", rate)))
            }
            json.endObject()
            json.key("disk")
            json.beginObject()
            json.field("data_directory", manager.configuration.dataDirectory)
            json.field("used_bytes", manager.budget?.usedBytes ?? FileSystem.usedBytes(under: manager.configuration.dataDirectory))
            if let budget = manager.budget { json.field("budget_bytes", budget.limitBytes) }
            json.endObject()
            if let loss {
                // Loss markers since start, by reason: {"drop-oldest": {"markers": 2, "records": 8192, "last_at_ms": ...}}
                json.key("loss")
                json.beginObject()
                for (reason, totals) in loss.totalsByReason.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    json.key(reason.rawValue)
                    json.beginObject()
                    json.field("markers", totals.markers)
                    json.field("records", totals.records)
                    if let last = totals.lastAtMs { json.field("last_at_ms", last) }
                    json.endObject()
                }
                json.endObject()
            }
            writeReports(&json) { _ in true }
            json.key("topics")
            json.beginArray()
            for name in manager.topicNames {
                guard let topic = manager.topic(name) else { continue }
                json.beginObject()
                json.field("name", name)
                Self.writePartitions(&json, topic)
                json.endObject()
            }
            json.endArray()
        }
    }

    static func json(_ status: HTTPResponse.Status, _ body: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter()
        json.beginObject()
        body(&json)
        json.endObject()
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.buffer))
    }
}
