public import NIOCore

/// A message body that the generated codecs can write and read at any supported version.
public protocol KafkaMessage: Sendable {
    static var apiKey: Int16 { get }
    static var supportedVersions: ClosedRange<Int16> { get }
    /// Whether `version` uses KIP-482's compact encodings and tagged fields (and so the
    /// newer request and response headers).
    static func isFlexible(_ version: Int16) -> Bool

    init(from buffer: inout ByteBuffer, version: Int16) throws(KafkaCodecError)
    func write(to buffer: inout ByteBuffer, version: Int16) throws(KafkaCodecError)
}

public protocol KafkaRequestMessage: KafkaMessage {
    associatedtype Response: KafkaResponseMessage
}

public protocol KafkaResponseMessage: KafkaMessage {}

extension KafkaRequestMessage {
    /// Request header v2 for flexible versions, v1 otherwise (v0 has no client id and no
    /// supported API needs it).
    public static func requestHeaderVersion(_ version: Int16) -> Int16 {
        isFlexible(version) ? 2 : 1
    }
}

extension KafkaResponseMessage {
    /// Response header v1 (with tagged fields) for flexible versions. ApiVersions is the
    /// exception: its response always uses header v0, so a client can read it before it
    /// knows what the broker speaks (KIP-511).
    public static func responseHeaderVersion(_ version: Int16) -> Int16 {
        apiKey == 18 ? 0 : (isFlexible(version) ? 1 : 0)
    }
}
