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
                "edgelog.sasl": "\(broker.requiresAuthentication ? settings.saslMechanisms.map(\.rawValue).joined(separator: ",") : "off")",
            ])
        // Shutdown cancels the accept loop and every connection (their pending answers are
        // dropped: clients retry, and nothing they were told is committed is lost).
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.broker.groups.runTimers() }
                do {
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                } catch {
                    if !Task.isCancelled { self.logger.error("Kafka listener stopped: \(error)") }
                }
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress.map { "\($0)" } ?? "?"
        let session = KafkaSession(peer: peer)
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (answers, queue) = AsyncStream.makeStream(of: Task<ByteBuffer?, Never>.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let channel = connection.channel
                    group.addTask {
                        do {
                            for await answer in answers {
                                guard let frame = await answer.value else { continue }  // acks=0: no answer
                                guard frame.readableBytes > 0 else { throw KafkaListenerError.unanswerable }
                                try await outbound.write(frame)
                            }
                        } catch {
                            channel.close(promise: nil)  // ends the read loop too
                            throw error
                        }
                    }
                    defer { queue.finish() }
                    for try await frame in inbound {
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
