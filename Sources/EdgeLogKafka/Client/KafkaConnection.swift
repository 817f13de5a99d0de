public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// One connection to one broker: framing, correlation ids, ApiVersions negotiation and
/// SASL, on SwiftNIO. Requests may be pipelined; the broker answers them in order.
public final class KafkaConnection: Sendable {
    public let broker: KafkaBrokerAddress
    let channel: any Channel
    private let configuration: KafkaClientConfiguration
    private let lastCorrelationId = Atomic<Int32>(0)
    private let brokerVersions = Mutex<[Int16: ClosedRange<Int16>]>([:])

    private init(broker: KafkaBrokerAddress, channel: any Channel, configuration: KafkaClientConfiguration) {
        self.broker = broker
        self.channel = channel
        self.configuration = configuration
    }

    /// Connects, negotiates API versions and authenticates. Any failure closes the socket.
    public static func connect(
        to broker: KafkaBrokerAddress,
        configuration: KafkaClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(KafkaClientError) -> KafkaConnection {
        let name = broker.description
        var sslContext: NIOSSLContext?
        if let tls = configuration.tls {
            do { sslContext = try NIOSSLContext(configuration: tls) } catch {
                throw .tlsFailed(broker: name, reason: "bad TLS configuration: \(error)")
            }
        }
        let maxFrame = configuration.maxResponseBytes
        let serverHostname = Self.isIPAddress(broker.host) ? nil : broker.host
        let handshake = group.next().makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Self.nanoseconds(configuration.connectTimeout)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { [sslContext] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWaiter(handshake: handshake, broker: name))
                    } else {
                        handshake.succeed(())
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrame, broker: name)))
                    try channel.pipeline.syncOperations.addHandler(KafkaClientHandler(broker: name))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: broker.host, port: broker.port).get()
        } catch {
            handshake.fail(KafkaClientError.connectFailed(broker: name, reason: "\(error)"))  // never left pending
            throw .connectFailed(broker: name, reason: "\(error)")
        }
        let connection = KafkaConnection(broker: broker, channel: channel, configuration: configuration)
        let handshakeTimeout = channel.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(configuration.connectTimeout))) {
            handshake.fail(KafkaClientError.tlsFailed(
                broker: name, reason: "no TLS handshake within \(configuration.connectTimeout) (is the listener TLS?)"))
        }
        do {
            try await handshake.futureResult.get()
            handshakeTimeout.cancel()
        } catch {
            handshakeTimeout.cancel()
            connection.close()
            throw (error as? KafkaClientError) ?? .tlsFailed(broker: name, reason: "\(error)")
        }
        do {
            try await connection.negotiateVersions()
            if let sasl = configuration.sasl { try await connection.authenticate(sasl) }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }

    // MARK: Requests

    /// Sends `request` at the highest version both sides speak (or `version`) and waits.
    public func send<Request: KafkaRequestMessage>(
        _ request: Request, version: Int16? = nil
    ) async throws(KafkaClientError) -> Request.Response {
        var resolved: Int16
        if let version { resolved = version } else { resolved = try negotiatedVersion(of: Request.self) }
        let future = try sendPipelined(request, version: resolved)
        do {
            return try await future.get()
        } catch let error as KafkaClientError {
            throw error
        } catch {
            throw .connectionClosed(broker: broker.description)
        }
    }

    /// Writes `request` now and returns its response's future; callers keep several in flight.
    public func sendPipelined<Request: KafkaRequestMessage>(
        _ request: Request, version: Int16
    ) throws(KafkaClientError) -> EventLoopFuture<Request.Response> {
        let api = Self.apiName(Request.apiKey)
        let frame = try encode(request, version: version)
        let brokerName = broker.description
        return sendFrame(frame.buffer, correlationId: frame.correlationId, api: api).flatMapThrowing { body in
            var body = body
            do {
                _ = try KafkaResponseHeader(from: &body, headerVersion: Request.Response.responseHeaderVersion(version))
                return try Request.Response(from: &body, version: version)
            } catch {
                throw KafkaClientError.malformedResponse(broker: brokerName, api: api, reason: "\(error)")
            }
        }
    }

    private func encode<Request: KafkaRequestMessage>(
        _ request: Request, version: Int16
    ) throws(KafkaClientError) -> (buffer: ByteBuffer, correlationId: Int32) {
        let correlationId = lastCorrelationId.wrappingAdd(1, ordering: .relaxed).newValue
        var buffer = channel.allocator.buffer(capacity: 256)
        buffer.writeInteger(Int32(0))  // size, set below
        let header = KafkaRequestHeader(
            apiKey: Request.apiKey, apiVersion: version, correlationId: correlationId, clientId: configuration.clientId)
        do {
            try header.write(to: &buffer, headerVersion: Request.requestHeaderVersion(version))
            try request.write(to: &buffer, version: version)
        } catch {
            throw .encodingFailed(api: Self.apiName(Request.apiKey), reason: "\(error)")
        }
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: buffer.readerIndex)
        return (buffer, correlationId)
    }

    /// Sends a framed request and resolves with the response frame (header included). A
    /// request that outlives the timeout closes the connection: what the broker did with
    /// it is unknown, and every later response on this connection would be suspect.
    private func sendFrame(_ frame: ByteBuffer, correlationId: Int32, api: String) -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let timeout = configuration.requestTimeout
        let channel = self.channel
        let brokerName = broker.description
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(timeout))) {
            channel.pipeline.fireErrorCaught(KafkaClientError.requestTimedOut(broker: brokerName, api: api, after: timeout))
        }
        // A write to a channel that has already closed never reaches the handler, so its
        // failure must fail the response here (a second completion is ignored by NIO).
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(KafkaClientError.connectionClosed(broker: brokerName)) }
        channel.writeAndFlush(KafkaOutboundRequest(correlationId: correlationId, frame: frame, response: promise), promise: written)
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    // MARK: Versions

    /// The highest version of `Request` that both we and the broker speak.
    public func negotiatedVersion<Request: KafkaRequestMessage>(of _: Request.Type) throws(KafkaClientError) -> Int16 {
        let ours = Request.supportedVersions
        let theirs = brokerVersions.withLock { $0[Request.apiKey] }
        guard let theirs, theirs.overlaps(ours) else {
            throw .unsupportedAPI(broker: broker.description, api: Self.apiName(Request.apiKey), ours: ours, theirs: theirs)
        }
        return min(ours.upperBound, theirs.upperBound)
    }

    /// What the broker announced, by API key.
    public var apiVersions: [Int16: ClosedRange<Int16>] { brokerVersions.withLock { $0 } }

    /// ApiVersions at our highest version; a broker that does not know it answers
    /// UNSUPPORTED_VERSION in the v0 layout with its own range, and we ask again in that.
    private func negotiateVersions() async throws(KafkaClientError) {
        var version = ApiVersionsRequest.supportedVersions.upperBound
        for _ in 0..<2 {
            let request = ApiVersionsRequest(clientSoftwareName: "edgelog", clientSoftwareVersion: "1.0.0")
            let frame = try encode(request, version: version)
            var body: ByteBuffer
            do {
                body = try await sendFrame(frame.buffer, correlationId: frame.correlationId, api: "ApiVersions").get()
            } catch let error as KafkaClientError {
                throw error
            } catch {
                throw .connectionClosed(broker: broker.description)
            }
            do {
                _ = try KafkaResponseHeader(from: &body, headerVersion: 0)
                let errorCode = KafkaErrorCode(body.getInteger(at: body.readerIndex, as: Int16.self) ?? 0)
                let decodeVersion = errorCode == .unsupportedVersion ? 0 : version
                let response = try ApiVersionsResponse(from: &body, version: decodeVersion)
                if errorCode == .unsupportedVersion {
                    guard let theirs = response.apiKeys.first(where: { $0.apiKey == ApiVersionsRequest.apiKey }) else { break }
                    version = min(version, theirs.maxVersion)
                    continue
                }
                guard errorCode == .none else {
                    throw KafkaClientError.brokerError(broker: broker.description, api: "ApiVersions", code: errorCode, message: nil)
                }
                var versions: [Int16: ClosedRange<Int16>] = [:]
                for key in response.apiKeys where key.minVersion <= key.maxVersion {
                    versions[key.apiKey] = key.minVersion...key.maxVersion
                }
                brokerVersions.withLock { $0 = versions }
                return
            } catch let error as KafkaClientError {
                throw error
            } catch {
                throw .malformedResponse(broker: broker.description, api: "ApiVersions", reason: "\(error)")
            }
        }
        throw .unsupportedAPI(broker: broker.description, api: "ApiVersions", ours: ApiVersionsRequest.supportedVersions, theirs: nil)
    }

    // MARK: SASL

    private func authenticate(_ credentials: KafkaSASLCredentials) async throws(KafkaClientError) {
        let mechanism = credentials.mechanism.rawValue
        let handshake = try await send(SaslHandshakeRequest(mechanism: mechanism), version: 1)
        guard handshake.errorCode == KafkaErrorCode.none.rawValue else {
            throw .authenticationFailed(
                broker: broker.description, mechanism: mechanism,
                reason: "\(KafkaErrorCode(handshake.errorCode)); the broker offers \(handshake.mechanisms.joined(separator: ", "))")
        }
        var exchange = SASLExchange(credentials: credentials)
        var token: [UInt8]? = exchange.start()
        while let outgoing = token {
            let response = try await send(SaslAuthenticateRequest(authBytes: ByteBuffer(bytes: outgoing)))
            guard response.errorCode == KafkaErrorCode.none.rawValue else {
                throw .authenticationFailed(
                    broker: broker.description, mechanism: mechanism,
                    reason: response.errorMessage ?? "\(KafkaErrorCode(response.errorCode))")
            }
            do {
                token = try exchange.next(serverMessage: Array(response.authBytes.readableBytesView))
            } catch {
                throw .authenticationFailed(broker: broker.description, mechanism: mechanism, reason: "\(error)")
            }
        }
    }

    // MARK: Helpers

    static func apiName(_ key: Int16) -> String {
        KafkaAPIKey(rawValue: key).map { "\($0)" } ?? "api \(key)"
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
