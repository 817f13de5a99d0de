public import NIOCore

/// A record header: a string key and bytes (or null).
public struct RecordHeader: Sendable, Hashable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record as a producer hands it to the log, or as a reader gets it back.
///
/// Key, value and header values are `ByteBuffer`s, usually slices of a request body or of a
/// stored batch, so building a record copies no payload bytes.
public struct Record: Sendable, Hashable {
    /// Offset in the partition; ignored on append, where the log assigns it.
    public var offset: Int64
    /// Milliseconds since the Unix epoch.
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(
        offset: Int64 = 0,
        timestamp: Int64,
        key: ByteBuffer? = nil,
        value: ByteBuffer?,
        headers: [RecordHeader] = []
    ) {
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Bytes of key, value and headers: what counts against size limits before encoding.
    @inlinable
    public var payloadBytes: Int {
        var total = (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
        for header in headers {
            total += header.key.utf8.count + (header.value?.readableBytes ?? 0)
        }
        return total
    }
}
