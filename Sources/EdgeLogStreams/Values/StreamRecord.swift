/// One record as a processor sees it: where it was read from, its key, value and headers as
/// stored in the log, and its log timestamp.
public struct StreamRecord: Sendable, Equatable {
    public struct Header: Sendable, Equatable {
        public var key: String
        public var value: [UInt8]?

        public init(key: String, value: [UInt8]?) {
            self.key = key
            self.value = value
        }
    }

    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestampMs: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]

    public init(
        topic: String, partition: Int32, offset: Int64, timestampMs: Int64, key: [UInt8]?, value: [UInt8]?,
        headers: [Header] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// A record a processor emits: to its output topic, to the side topic of late records, or to
/// its dead-letter topic.
public struct StreamOutput: Sendable, Equatable {
    public enum Destination: String, Sendable {
        case output, late = "late", deadLetter = "dead-letter"
    }

    public var destination: Destination
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var timestampMs: Int64
    public var headers: [StreamRecord.Header]

    public init(
        destination: Destination, key: [UInt8]?, value: [UInt8]?, timestampMs: Int64, headers: [StreamRecord.Header] = []
    ) {
        self.destination = destination
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.headers = headers
    }
}
