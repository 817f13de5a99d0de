import Crypto
@testable import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A tiny Kafka "cluster" of in-process brokers speaking the real protocol through the
/// generated codecs, for what Tansu cannot be made to do: move a partition's leader. Every
/// broker answers metadata from the shared state; only the current leader accepts Produce,
/// the others answer NOT_LEADER_OR_FOLLOWER, as Kafka does after a leadership change.
final class FakeKafkaCluster: @unchecked Sendable {
    struct State {
        var leader: Int32 = 1
        var partitions: Int32 = 1
        var topics: Set<String> = []
        /// Record values accepted, by broker node id, in arrival order.
        var accepted: [Int32: [String]] = [:]
        var refused: [Int32: Int] = [:]
        var metadataRequests = 0
        /// When set, clients must authenticate (SASL) before anything but ApiVersions.
        var credentials: KafkaSASLCredentials?
        var authenticated = 0
        var refusedLogins = 0
    }

    let state = Mutex(State())
    private(set) var ports: [Int32: Int] = [:]
    private var channels: [any Channel] = []

    init(brokers: [Int32]) async throws {
        for node in brokers {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: 16 << 20, broker: "client")))
                        try channel.pipeline.syncOperations.addHandler(FakeBrokerHandler(node: node, cluster: self))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            channels.append(channel)
            ports[node] = channel.localAddress!.port!
        }
    }

    func shutdown() async {
        for channel in channels { try? await channel.close() }
    }

    func bootstrap(_ node: Int32) -> String { "127.0.0.1:\(ports[node]!)" }

    /// Answers one request as broker `node`; nil for an API it does not know.
    func answer(node: Int32, header: KafkaRequestHeader, body: inout ByteBuffer) throws -> (any KafkaResponseMessage)? {
        let version = header.apiVersion
        switch header.apiKey {
        case ApiVersionsRequest.apiKey:
            return ApiVersionsResponse(apiKeys: KafkaAPIKey.allCases.map {
                .init(apiKey: $0.rawValue, minVersion: $0.supportedVersions.lowerBound, maxVersion: $0.supportedVersions.upperBound)
            })
        case MetadataRequest.apiKey:
            let request = try MetadataRequest(from: &body, version: version)
            return state.withLock { state in
                state.metadataRequests += 1
                let brokers = ports.sorted { $0.key < $1.key }.map {
                    MetadataResponse.MetadataResponseBroker(nodeId: $0.key, host: "127.0.0.1", port: Int32($0.value))
                }
                let topics = (request.topics ?? []).compactMap(\.name).map { name in
                    guard state.topics.contains(name) else {
                        return MetadataResponse.MetadataResponseTopic(errorCode: KafkaErrorCode.unknownTopicOrPartition.rawValue, name: name)
                    }
                    return MetadataResponse.MetadataResponseTopic(name: name, partitions: (0..<state.partitions).map {
                        .init(partitionIndex: $0, leaderId: state.leader, replicaNodes: Array(ports.keys), isrNodes: Array(ports.keys))
                    })
                }
                return MetadataResponse(brokers: brokers, clusterId: "fake", controllerId: 1, topics: topics)
            }
        case CreateTopicsRequest.apiKey:
            let request = try CreateTopicsRequest(from: &body, version: version)
            return state.withLock { state in
                CreateTopicsResponse(topics: request.topics.map { topic in
                    let inserted = state.topics.insert(topic.name).inserted
                    return .init(name: topic.name, errorCode: inserted ? 0 : KafkaErrorCode.topicAlreadyExists.rawValue)
                })
            }
        case InitProducerIdRequest.apiKey:
            return InitProducerIdResponse(producerId: 42, producerEpoch: 0)
        case ProduceRequest.apiKey:
            let request = try ProduceRequest(from: &body, version: version)
            var responses: [ProduceResponse.TopicProduceResponse] = []
            for topic in request.topicData {
                var partitions: [ProduceResponse.PartitionProduceResponse] = []
                for partition in topic.partitionData {
                    let isLeader = state.withLock { $0.leader == node }
                    guard isLeader else {
                        state.withLock { $0.refused[node, default: 0] += 1 }
                        partitions.append(.init(index: partition.index, errorCode: KafkaErrorCode.notLeaderOrFollower.rawValue))
                        continue
                    }
                    let batch = try RecordBatch(validating: partition.records ?? ByteBuffer())
                    var values: [String] = []
                    var iterator = try batch.records(using: BatchCompressor())
                    while let record = try iterator.next() { values.append(record.value.map { String(buffer: $0) } ?? "") }
                    state.withLock { $0.accepted[node, default: []] += values }
                    partitions.append(.init(index: partition.index, errorCode: 0, baseOffset: 0))
                }
                responses.append(.init(name: topic.name, partitionResponses: partitions))
            }
            return ProduceResponse(responses: responses)
        default:
            return nil
        }
    }
}

private final class FakeBrokerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let node: Int32
    let cluster: FakeKafkaCluster
    /// The server side of SASL on this connection.
    private var mechanism: KafkaSASLCredentials.Mechanism?
    private var scramStep: (clientFirstBare: String, serverFirst: String)?
    private var authenticated = false

    init(node: Int32, cluster: FakeKafkaCluster) {
        self.node = node
        self.cluster = cluster
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        do {
            var header = try KafkaRequestHeader(from: &frame)
            guard let api = KafkaAPIKey(rawValue: header.apiKey) else { throw KafkaCodecError.unsupportedVersion(apiKey: header.apiKey, version: header.apiVersion) }
            let flexible = Self.isFlexible(api, header.apiVersion)
            try header.readRest(from: &frame, headerVersion: flexible ? 2 : 1)
            let credentials = cluster.state.withLock { $0.credentials }
            let response: (any KafkaResponseMessage)?
            switch api {
            case .saslHandshake:
                let request = try SaslHandshakeRequest(from: &frame, version: header.apiVersion)
                mechanism = credentials.flatMap { $0.mechanism.rawValue == request.mechanism ? $0.mechanism : nil }
                response = SaslHandshakeResponse(
                    errorCode: mechanism == nil ? KafkaErrorCode.unsupportedSaslMechanism.rawValue : 0,
                    mechanisms: credentials.map { [$0.mechanism.rawValue] } ?? [])
            case .saslAuthenticate:
                let request = try SaslAuthenticateRequest(from: &frame, version: header.apiVersion)
                response = authenticate(String(buffer: request.authBytes), credentials: credentials)
            default:
                guard credentials == nil || authenticated || api == .apiVersions else {
                    context.close(promise: nil)  // as Kafka does before authentication
                    return
                }
                response = try cluster.answer(node: node, header: header, body: &frame)
            }
            guard let response else {
                context.close(promise: nil)
                return
            }
            var out = context.channel.allocator.buffer(capacity: 256)
            out.writeInteger(Int32(0))
            let responseHeaderVersion: Int16 = api == .apiVersions ? 0 : (flexible ? 1 : 0)
            KafkaResponseHeader(correlationId: header.correlationId).write(to: &out, headerVersion: responseHeaderVersion)
            try response.write(to: &out, version: header.apiVersion)
            out.setInteger(Int32(out.readableBytes - 4), at: 0)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    /// PLAIN and SCRAM (RFC 5802) from the server's side, using the client's own SCRAM
    /// arithmetic only to compute what a correct proof must be.
    private func authenticate(_ message: String, credentials: KafkaSASLCredentials?) -> SaslAuthenticateResponse {
        let failed = SaslAuthenticateResponse(
            errorCode: KafkaErrorCode.saslAuthenticationFailed.rawValue, errorMessage: "Authentication failed: invalid credentials")
        guard let credentials, let mechanism else { return failed }
        func succeed(_ reply: String) -> SaslAuthenticateResponse {
            SaslAuthenticateResponse(authBytes: ByteBuffer(string: reply))
        }
        switch mechanism {
        case .plain:
            let parts = message.split(separator: "\0", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1] == credentials.username, parts[2] == credentials.password else {
                cluster.state.withLock { $0.refusedLogins += 1 }
                return failed
            }
            authenticated = true
            cluster.state.withLock { $0.authenticated += 1 }
            return succeed("")
        case .scramSHA256, .scramSHA512:
            let salt: [UInt8] = Array("fake-cluster-salt".utf8)
            if let step = scramStep {
                guard let proofStart = message.range(of: ",p=") else { return failed }
                let withoutProof = String(message[..<proofStart.lowerBound])
                let proof = Data(base64Encoded: String(message[proofStart.upperBound...])).map { [UInt8]($0) }
                let authMessage = Array("\(step.clientFirstBare),\(step.serverFirst),\(withoutProof)".utf8)
                let expected = mechanism == .scramSHA512
                    ? SASLExchange.scram(SHA512.self, password: credentials.password, salt: salt, iterations: 4096, authMessage: authMessage)
                    : SASLExchange.scram(SHA256.self, password: credentials.password, salt: salt, iterations: 4096, authMessage: authMessage)
                guard proof == expected.proof else {
                    cluster.state.withLock { $0.refusedLogins += 1 }
                    return failed
                }
                authenticated = true
                cluster.state.withLock { $0.authenticated += 1 }
                return succeed("v=" + Data(expected.serverSignature).base64EncodedString())
            }
            guard message.hasPrefix("n,,"), let nonceStart = message.range(of: ",r=") else { return failed }
            let clientFirstBare = String(message.dropFirst(3))
            guard clientFirstBare.hasPrefix("n=\(credentials.username),") else {
                cluster.state.withLock { $0.refusedLogins += 1 }
                return failed
            }
            let serverFirst = "r=\(message[nonceStart.upperBound...])fake-server-nonce,s=\(Data(salt).base64EncodedString()),i=4096"
            scramStep = (clientFirstBare, serverFirst)
            return succeed(serverFirst)
        }
    }

    static func isFlexible(_ api: KafkaAPIKey, _ version: Int16) -> Bool {
        switch api {
        case .saslHandshake: SaslHandshakeRequest.isFlexible(version)
        case .saslAuthenticate: SaslAuthenticateRequest.isFlexible(version)
        case .apiVersions: ApiVersionsRequest.isFlexible(version)
        case .metadata: MetadataRequest.isFlexible(version)
        case .createTopics: CreateTopicsRequest.isFlexible(version)
        case .initProducerId: InitProducerIdRequest.isFlexible(version)
        case .produce: ProduceRequest.isFlexible(version)
        default: false
        }
    }
}
