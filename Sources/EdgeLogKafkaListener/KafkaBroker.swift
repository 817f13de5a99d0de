import EdgeLogKafka
import EdgeLogStorage
import Logging
import Metrics
import NIOCore
import Synchronization
import EdgeLogCore

/// The broker side of the Kafka protocol over the local log: edgelog as a single-node Kafka
/// cluster (node 1, leader of every partition). One instance serves every connection.
///
/// `start` does, synchronously and in request order, everything whose order matters (reading
/// the request, sequence checks, queueing appends) and returns a task that finishes the
/// answer; the connection writes those answers in request order, as the protocol requires,
/// while later requests are already being read.
package final class KafkaBroker: Sendable {
    enum Action {
        /// The answer (a whole frame), or nil when the request gets none (Produce acks=0).
        case respond(Task<ResponseFrame?, Never>)
        /// The protocol says to close: an unknown API, an unsupported version, a malformed request.
        case close(reason: String)
    }

    static let nodeId: Int32 = 1

    /// What this broker speaks, per API: the generated codecs' ranges narrowed to the
    /// versions whose semantics are implemented.
    static let supportedVersions: [KafkaAPIKey: ClosedRange<Int16>] = [
        .produce: 3...9,
        .fetch: 4...17,
        .listOffsets: 1...7,
        .metadata: 1...12,
        .apiVersions: 0...3,
        .createTopics: 2...7,
        .deleteTopics: 1...6,
        .initProducerId: 0...4,
        .describeConfigs: 1...4,
        .findCoordinator: 0...4,
        .joinGroup: 0...7,
        .syncGroup: 0...5,
        .heartbeat: 0...4,
        .leaveGroup: 0...5,
        .offsetCommit: 0...8,
        .offsetFetch: 1...7,
        .describeGroups: 0...5,
        .listGroups: 0...4,
        // v0 is announced because librdkafka looks for it, but v0 clients (raw tokens after the
        // handshake) are not served: every client since Kafka 1.0 uses v1 and SaslAuthenticate.
        .saslHandshake: 0...1,
        .saslAuthenticate: 0...2,
        .offsetForLeaderEpoch: 0...4,
        .describeProducers: 0...0,
    ]

    let manager: LogManager
    let settings: EdgelogConfig.Kafka
    let defaultPartitions: Int32
    let advertised: KafkaBrokerAddress
    let clusterId: String
    let logger: Logger
    let producers = ProducerStateTable()
    let groups: GroupCoordinator
    let fetchSessions: FetchSessionCache
    private let nextProducerId: Atomic<Int64>
    /// `edgelog_kafka_requests_total{api}`: made once per API so counting costs no allocation.
    /// A client stuck in a loop of failing requests shows up here as a rate.
    private let requestCounters: [KafkaAPIKey: Counter]
    /// `edgelog_kafka_fetches_by_topic_id_total`: Fetch v13+, which names topics by id.
    let fetchesByTopicId = Counter(label: "edgelog_kafka_fetches_by_topic_id_total")

    init(manager: LogManager, settings: EdgelogConfig.Kafka, defaultPartitions: Int32, logger: Logger) {
        self.manager = manager
        self.settings = settings
        self.defaultPartitions = defaultPartitions
        self.advertised = KafkaBrokerAddress(
            host: settings.advertisedHost ?? Self.advertisableHost(settings.host), port: settings.advertisedPort ?? settings.port)
        self.clusterId = "edgelog"
        self.logger = logger
        self.fetchSessions = FetchSessionCache(slots: settings.fetchSessionSlots)
        self.groups = GroupCoordinator(
            store: GroupOffsetStore(dataDirectory: manager.configuration.dataDirectory), logger: logger)
        // Producer ids must not repeat across restarts (producer state is in memory): start
        // from the clock, in milliseconds, which a restart cannot go back past in practice.
        self.nextProducerId = Atomic(wallClockMs())
        self.requestCounters = Dictionary(uniqueKeysWithValues: Self.supportedVersions.keys.map {
            ($0, Counter(label: "edgelog_kafka_requests_total", dimensions: [("api", "\($0)")]))
        })
    }

    static func advertisableHost(_ host: String) -> String {
        host == "0.0.0.0" || host == "::" ? (Self.hostname() ?? "127.0.0.1") : host
    }

    private static func hostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return nil }
        return String(cString: buffer)
    }

    /// Runs until cancelled: forgets idempotent producers idle for a day, once a minute.
    func expireIdleProducers() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(60))
            let forgotten = producers.expire()
            if forgotten > 0 { logger.info("forgot idle producers", metadata: ["edgelog.producers": "\(forgotten)"]) }
        }
    }

    func newProducerId() -> Int64 { nextProducerId.wrappingAdd(1, ordering: .relaxed).newValue }

    // MARK: Dispatch

    func start(_ frame: ByteBuffer, session: KafkaSession) -> Action {
        let peer = session.peer
        var body = frame
        var header: KafkaRequestHeader
        do { header = try KafkaRequestHeader(from: &body) } catch { return .close(reason: "truncated request header") }
        guard let api = KafkaAPIKey(rawValue: header.apiKey) else {
            return .close(reason: "unknown api key \(header.apiKey)")
        }
        guard let versions = Self.supportedVersions[api], versions.contains(header.apiVersion) else {
            if api == .apiVersions {
                // KIP-511: an ApiVersions we do not speak is answered in v0, with our ranges.
                return .respond(Task { self.encode(self.apiVersions(error: .unsupportedVersion), correlationId: header.correlationId, version: 0) })
            }
            return .close(reason: "\(api) v\(header.apiVersion) is not supported (\(Self.supportedVersions[api].map { "\($0)" } ?? "none"))")
        }
        let version = header.apiVersion
        requestCounters[api]?.increment()
        do {
            try header.readRest(from: &body, headerVersion: api.isFlexibleRequest(version) ? 2 : 1)
            let correlationId = header.correlationId
            if requiresAuthentication && session.authenticatedUser == nil
                && ![.apiVersions, .saslHandshake, .saslAuthenticate].contains(api)
            {
                return .close(reason: "\(api) before SASL authentication")
            }
            switch api {
            case .saslHandshake:
                let request = try SaslHandshakeRequest(from: &body, version: version)
                return answer(saslHandshake(request, session: session), correlationId, version)
            case .saslAuthenticate:
                let request = try SaslAuthenticateRequest(from: &body, version: version)
                return answer(saslAuthenticate(request, session: session), correlationId, version)
            case .apiVersions:
                _ = try ApiVersionsRequest(from: &body, version: version)
                return answer(apiVersions(error: .none), correlationId, version)
            case .metadata:
                let request = try MetadataRequest(from: &body, version: version)
                return answer(metadata(request, version: version), correlationId, version)
            case .produce:
                let request = try ProduceRequest(from: &body, version: version)
                return produce(request, correlationId: correlationId, version: version)
            case .fetch:
                let request = try FetchRequest(from: &body, version: version)
                let sendsFiles = session.sendsFiles
                return .respond(Task {
                    let (response, spans) = await self.fetch(request, version: version, leavingRecordsInFiles: sendsFiles)
                    return self.encodeFetch(response, spans: spans, correlationId: correlationId, version: version)
                })
            case .listOffsets:
                let request = try ListOffsetsRequest(from: &body, version: version)
                return answer(listOffsets(request), correlationId, version)
            case .createTopics:
                let request = try CreateTopicsRequest(from: &body, version: version)
                return answer(createTopics(request), correlationId, version)
            case .deleteTopics:
                let request = try DeleteTopicsRequest(from: &body, version: version)
                return answer(deleteTopics(request, version: version), correlationId, version)
            case .describeConfigs:
                let request = try DescribeConfigsRequest(from: &body, version: version)
                return answer(describeConfigs(request), correlationId, version)
            case .findCoordinator:
                let request = try FindCoordinatorRequest(from: &body, version: version)
                return answer(findCoordinator(request, version: version), correlationId, version)
            case .joinGroup, .syncGroup, .heartbeat, .leaveGroup, .offsetCommit, .offsetFetch, .describeGroups, .listGroups:
                return try groupRequest(api, header: header, body: &body, peer: peer)
            case .offsetForLeaderEpoch:
                let request = try OffsetForLeaderEpochRequest(from: &body, version: version)
                return answer(offsetForLeaderEpoch(request), correlationId, version)
            case .describeProducers:
                let request = try DescribeProducersRequest(from: &body, version: version)
                return answer(describeProducers(request), correlationId, version)
            case .initProducerId:
                let request = try InitProducerIdRequest(from: &body, version: version)
                return answer(initProducerId(request), correlationId, version)
            default:
                return .close(reason: "\(api) is not served")
            }
        } catch {
            return .close(reason: "malformed \(api) v\(version) request: \(error)")
        }
    }

    private func answer<Response: KafkaResponseMessage>(_ response: Response, _ correlationId: Int32, _ version: Int16) -> Action {
        let frame = encode(response, correlationId: correlationId, version: version)
        return .respond(Task { frame })
    }

    /// A whole response frame: size, header (v0 or v1), body. A response that cannot be
    /// encoded (a bug) becomes an empty buffer, on which the connection closes, so the client
    /// retries instead of waiting forever.
    func encode<Response: KafkaResponseMessage>(_ response: Response, correlationId: Int32, version: Int16) -> ResponseFrame? {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(0))
        KafkaResponseHeader(correlationId: correlationId).write(to: &buffer, headerVersion: Response.responseHeaderVersion(version))
        do {
            try response.write(to: &buffer, version: version)
        } catch {
            logger.error("cannot encode \(Response.self) v\(version): \(error)")
            return ResponseFrame(ByteBuffer())
        }
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: 0)
        return ResponseFrame(buffer)
    }

    /// A Fetch answer: record sets found as stored spans are spliced in (see
    /// ``FetchResponseFrame``); without spans it is the plain encoding.
    func encodeFetch(_ response: FetchResponse, spans: [[StoredSpan?]]?, correlationId: Int32, version: Int16) -> ResponseFrame? {
        guard let spans else { return encode(response, correlationId: correlationId, version: version) }
        do {
            return try FetchResponseFrame.make(response, spans: spans, correlationId: correlationId, version: version)
        } catch {
            logger.error("cannot encode FetchResponse v\(version): \(error)")
            return ResponseFrame(ByteBuffer())
        }
    }

    // MARK: ApiVersions

    func apiVersions(error: KafkaErrorCode) -> ApiVersionsResponse {
        ApiVersionsResponse(
            errorCode: error.rawValue,
            apiKeys: Self.supportedVersions.sorted { $0.key.rawValue < $1.key.rawValue }.map {
                .init(apiKey: $0.key.rawValue, minVersion: $0.value.lowerBound, maxVersion: $0.value.upperBound)
            })
    }
}
