import EdgeLogKafka
public import EdgeLogStorage
public import Logging
import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle

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
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
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
        do {
            try await connection.executeThenClose { inbound, _ in
                let (answers, queue) = AsyncStream.makeStream(of: Task<ResponseFrame?, Never>.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let channel = connection.channel
                    group.addTask {
                        defer { slots.close() }
                        do {
                            for await answer in answers {
                                defer { slots.release() }
                                guard let frame = await answer.value else { continue }  // acks=0: no answer
                                guard !frame.isEmpty else { throw KafkaListenerError.unanswerable }
                                try await Self.write(frame, to: channel, sendingFiles: sendsFiles)
                            }
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
                            logger.notice("closing Kafka connection", metadata: ["edgelog.peer": "\(peer)", "edgelog.reason": "\(reason)"])
                            queue.finish()
                            try await group.waitForAll()
                            return
                        }
                    }
                    queue.finish()
                    try await group.waitForAll()
                }
            }
        } catch {
            logger.debug("Kafka connection ended", metadata: ["edgelog.peer": "\(peer)", "edgelog.error": "\(error)"])
        }
    }

    /// Writes one answer and waits until the channel has taken all of it (so a slow reader
    /// holds back the writer, and the next answer). Stored record sets go out as file
    /// regions, sent with sendfile from a descriptor of their own that is closed once the
    /// write completes or fails; on TLS they are read into memory first.
    static func write(_ frame: ResponseFrame, to channel: any Channel, sendingFiles: Bool) async throws {
        var written: [EventLoopFuture<Void>] = []
        written.reserveCapacity(frame.pieces.count)
        for piece in frame.pieces {
            switch piece {
            case .bytes(let bytes):
                guard bytes.readableBytes > 0 else { continue }
                written.append(channel.write(IOData.byteBuffer(bytes)))
            case .stored(let span) where sendingFiles:
                // Out of descriptors (EMFILE): the bytes go through memory instead.
                guard let descriptor = try? span.duplicateDescriptor() else {
                    written.append(channel.write(IOData.byteBuffer(try span.read(allocator: channel.allocator))))
                    continue
                }
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
                let start = Int(span.position)
                let future = channel.write(IOData.fileRegion(FileRegion(fileHandle: handle, readerIndex: start, endIndex: start + span.length)))
                future.whenComplete { _ in try? handle.close() }
                written.append(future)
            case .stored(let span):
                written.append(channel.write(IOData.byteBuffer(try span.read(allocator: channel.allocator))))
            }
        }
        channel.flush()
        for future in written { try await future.get() }
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
