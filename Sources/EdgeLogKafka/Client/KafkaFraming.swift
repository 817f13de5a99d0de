public import NIOCore
import NIOSSL
import NIOTLS

/// Splits the inbound byte stream into Kafka frames (an int32 size, then that many bytes),
/// refusing frames over a limit before buffering them. Used on both sides: the client's
/// responses and the listener's requests.
public final class KafkaFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    let maxFrameSize: Int
    let broker: String

    /// `peer` names the other side in errors.
    public init(maxFrameSize: Int, broker peer: String) {
        self.maxFrameSize = maxFrameSize
        self.broker = peer
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return .needMoreData }
        guard size >= 0, Int(size) <= maxFrameSize else {
            throw KafkaClientError.frameTooLarge(broker: broker, size: Int(size), limit: maxFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(size))!))
        return .continue
    }
}

/// One request on its way out: the whole frame, and where its response goes (nil when the
/// request gets none, as with acks=0 produces).
struct KafkaOutboundRequest {
    var correlationId: Int32
    var frame: ByteBuffer
    var response: EventLoopPromise<ByteBuffer>?
}

/// Matches response frames to requests by correlation id. Any failure of the connection
/// fails every request still waiting, with the reason.
final class KafkaClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = KafkaOutboundRequest
    typealias OutboundOut = ByteBuffer

    private var waiting: [Int32: EventLoopPromise<ByteBuffer>] = [:]
    private var failure: KafkaClientError?
    private let broker: String

    init(broker: String) {
        self.broker = broker
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.response?.fail(failure)
            promise?.fail(failure)
            return
        }
        if let response = request.response { waiting[request.correlationId] = response }
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let correlationId = frame.getInteger(at: frame.readerIndex, as: Int32.self),
            let promise = waiting.removeValue(forKey: correlationId)
        else {
            // A response to nothing we asked: the stream is out of step, so nothing after it
            // can be trusted either.
            failAll(.malformedResponse(broker: broker, api: "?", reason: "unexpected correlation id"), context: context)
            return
        }
        promise.succeed(frame)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = (error as? KafkaClientError) ?? Self.describe(error, broker: broker)
        failAll(reason, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(failure ?? .connectionClosed(broker: broker), context: context)
        context.fireChannelInactive()
    }

    private func failAll(_ error: KafkaClientError, context: ChannelHandlerContext) {
        if failure == nil { failure = error }
        let pending = waiting
        waiting = [:]
        for promise in pending.values { promise.fail(failure!) }
        context.close(promise: nil)
    }

    static func describe(_ error: any Error, broker: String) -> KafkaClientError {
        if error is NIOSSLError || error is BoringSSLError {
            return .tlsFailed(broker: broker, reason: String(describing: error))
        }
        return .connectFailed(broker: broker, reason: String(describing: error))
    }
}

/// Completes `handshake` when TLS is up, or fails it with a TLS error, so that a broker
/// whose listener is not TLS (or has the wrong certificate) is reported as such instead of
/// as a silent request timeout.
final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let handshake: EventLoopPromise<Void>
    let broker: String

    init(handshake: EventLoopPromise<Void>, broker: String) {
        self.handshake = handshake
        self.broker = broker
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            handshake.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(KafkaClientError.tlsFailed(broker: broker, reason: String(describing: error)))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(KafkaClientError.tlsFailed(broker: broker, reason: "connection closed during the handshake"))
        context.fireChannelInactive()
    }
}
