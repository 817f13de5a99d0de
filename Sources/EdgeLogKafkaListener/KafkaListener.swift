import EdgeLogKafka
public import EdgeLogStorage
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
public import EdgeLogCore

/// The Kafka wire-protocol listener (default 127.0.0.1:9092): every connection reads
/// frames, hands each to the broker in order, and writes the answers in the same order.
public final class KafkaListener: Service, Sendable {
    let settings: EdgelogConfig.Kafka
    let broker: KafkaBroker
    let logger: Logger

    public init(config: EdgelogConfig, manager: LogManager, logger: Logger) {
        self.settings = config.kafka
        self.broker = KafkaBroker(
            manager: manager, settings: config.kafka, defaultPartitions: config.http.defaultPartitions, logger: logger)
        self.logger = logger
    }

    public func run() async throws {
        let maxFrame = settings.maxRequestBytes
        var tls: NIOSSLContext?
        if let certificate = settings.tlsCertFile, let key = settings.tlsKeyFile {
            do {
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                tls = try NIOSSLContext(configuration: configuration)
            } catch {
                throw KafkaListenerError.tls("cannot load [kafka] tls_cert_file \(certificate) / tls_key_file \(key): \(error)")
            }
        }
        let sendsFiles = tls == nil && settings.zeroCopy
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { [logger] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(logger: logger))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: settings.host, port: settings.port) { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrame, broker: "client")))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info(
            "Kafka listener ready",
            metadata: [
                "edgelog.address": "\(server.channel.localAddress.map { "\($0)" } ?? "?")",
                "edgelog.advertised": "\(broker.advertised)",
                "edgelog.tls": "\(tls != nil)",
                "edgelog.zero_copy": "\(sendsFiles)",
                "edgelog.sasl": "\(broker.requiresAuthentication ? settings.saslMechanisms.map(\.rawValue).joined(separator: ",") : "off")",
            ])
        // Shutdown cancels the accept loop and every connection (their pending answers are
        // dropped: clients retry, and nothing they were told is committed is lost).
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.broker.groups.runTimers() }
                group.addTask { await self.broker.expireIdleProducers() }
                do {
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await self.serve(connection, sendsFiles: sendsFiles) }
                        }
                    }
                } catch {
                    if !Task.isCancelled { self.logger.error("Kafka listener stopped: \(error)") }
                }
            }
        }
    }

    /// How many answers one connection may have pending before its reader waits. Above the
    /// 5 in-flight requests per partition an idempotent producer uses, with room for several
    /// partitions' worth on one connection.
    static let maxPendingAnswers = 64

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, sendsFiles: Bool) async {
        let peer = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        let session = KafkaSession(peer: peer, sendsFiles: sendsFiles)
        let slots = AnswerSlots(Self.maxPendingAnswers)
        // Shutdown cancels this task. Closing the channel then fails the writes in flight and
        // ends the read loop, so a client that stopped reading cannot hold up the stop.
        await withTaskCancellationHandler {
            do {
                try await connection.executeThenClose { inbound, _ in
                    try await exchange(inbound: inbound, channel: connection.channel, session: session, slots: slots)
                }
            } catch {
                logger.debug("Kafka connection ended", metadata: ["edgelog.peer": "\(peer)", "edgelog.error": "\(error)"])
            }
        } onCancel: {
            connection.channel.close(promise: nil)
        }
    }

    /// Reads requests and starts them in order; a second task writes their answers in the
    /// same order as they finish.
    private func exchange(
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>, channel: any Channel, session: KafkaSession, slots: AnswerSlots
    ) async throws {
        let (answers, queue) = AsyncStream.makeStream(of: Task<ResponseFrame?, Never>.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { slots.close() }
                var previous: EventLoopFuture<Void>?
                do {
                    for await answer in answers {
                        defer { slots.release() }
                        guard let frame = await answer.value else { continue }  // acks=0: no answer
                        guard !frame.isEmpty else { throw KafkaListenerError.unanswerable }
                        let written = try Self.write(frame, to: channel)
                        // One answer may still be on its way while the next is handed over;
                        // a client that reads slower holds the writer back here.
                        try await previous?.get()
                        previous = written
                    }
                    try await previous?.get()
                } catch {
                    channel.close(promise: nil)  // ends the read loop too
                    throw error
                }
            }
            defer { queue.finish() }
            for try await frame in inbound {
                guard await slots.acquire() else { break }
                switch broker.start(frame, session: session) {
                case .respond(let answer):
                    queue.yield(answer)
                    if session.closeAfterAnswer {
                        queue.finish()
                        try await group.waitForAll()
                        return
                    }
                case .close(let reason):
                    logger.notice("closing Kafka connection", metadata: ["edgelog.peer": "\(session.peer)", "edgelog.reason": "\(reason)"])
                    queue.finish()
                    try await group.waitForAll()
                    return
                }
            }
            queue.finish()
            try await group.waitForAll()
        }
    }

    /// Hands one answer to the channel in a single event-loop turn and returns the write of
    /// its last piece. Stored record sets go out as file regions (sendfile) on a descriptor of
    /// their own, closed once the write completes or fails; when none can be had (EMFILE)
    /// they are read into memory instead.
    static func write(_ frame: ResponseFrame, to channel: any Channel) throws -> EventLoopFuture<Void> {
        var pieces: [(data: IOData, handle: NIOFileHandle?)] = []
        pieces.reserveCapacity(frame.pieces.count)
        do {
            for piece in frame.pieces {
                switch piece {
                case .bytes(let bytes):
                    if bytes.readableBytes > 0 { pieces.append((.byteBuffer(bytes), nil)) }
                case .stored(let span):
                    if let descriptor = try? span.duplicateDescriptor() {
                        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
                        let start = Int(span.position)
                        pieces.append((.fileRegion(FileRegion(fileHandle: handle, readerIndex: start, endIndex: start + span.length)), handle))
                    } else {
                        pieces.append((.byteBuffer(try span.read(allocator: channel.allocator)), nil))
                    }
                }
            }
        } catch {
            for piece in pieces { try? piece.handle?.close() }
            throw error
        }
        let done = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute {
            for (index, piece) in pieces.enumerated() {
                let written = channel.write(piece.data)
                if let handle = piece.handle { written.whenComplete { _ in try? handle.close() } }
                if index == pieces.count - 1 { written.cascade(to: done) }
            }
            if pieces.isEmpty { done.succeed() }
            channel.flush()
        }
        return done.futureResult
    }
}

/// Keeps a failed accept from ending the listener: errors on the listening socket (EMFILE when
/// out of descriptors, an accepted socket whose options cannot be set) are logged and dropped
/// here instead of reaching the accept loop, which would stop at the first one. The failed
/// connection is closed; the next one is accepted as usual. Out of descriptors, accept fails
/// thousands of times a second, so the log gets one line per 10 s with the count.
final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = any Channel
    private let logger: Logger
    private var lastLogged: NIODeadline?
    private var suppressed = 0

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let now = NIODeadline.now()
        if let lastLogged, now - lastLogged < .seconds(10) {
            suppressed += 1
            return
        }
        logger.warning(
            "Kafka listener could not accept a connection",
            metadata: ["edgelog.error": "\(error)", "edgelog.failures_since_last_report": "\(suppressed)"])
        lastLogged = now
        suppressed = 0
    }
}

enum KafkaListenerError: Error, CustomStringConvertible {
    /// A response could not be encoded; the connection closes so the client retries.
    case unanswerable
    case tls(String)

    var description: String {
        switch self {
        case .unanswerable: "a response could not be encoded"
        case .tls(let reason): reason
        }
    }
}
