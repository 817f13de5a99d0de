public import NIOCore

/// The header in front of every request body. The client id keeps its int16-length
/// encoding even in header v2; only the tagged-field section is new there.
public struct KafkaRequestHeader: Sendable, Equatable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String?

    public init(apiKey: Int16, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    public func write(to buffer: inout ByteBuffer, headerVersion: Int16) throws(KafkaCodecError) {
        buffer.writeInteger(apiKey)
        buffer.writeInteger(apiVersion)
        buffer.writeInteger(correlationId)
        if headerVersion >= 1 {
            try buffer.writeKafkaString(clientId, flexible: false, nullable: true, field: "clientId")
        }
        if headerVersion >= 2 { buffer.writeKafkaUnsignedVarint(0) }
    }

    /// Reads the fixed part (key, version, correlation id) so a server can tell which header
    /// version follows; then `readRest` finishes it.
    public init(from buffer: inout ByteBuffer) throws(KafkaCodecError) {
        apiKey = try buffer.readKafkaInteger(Int16.self, field: "apiKey")
        apiVersion = try buffer.readKafkaInteger(Int16.self, field: "apiVersion")
        correlationId = try buffer.readKafkaInteger(Int32.self, field: "correlationId")
        clientId = nil
    }

    public mutating func readRest(from buffer: inout ByteBuffer, headerVersion: Int16) throws(KafkaCodecError) {
        if headerVersion >= 1 {
            clientId = try buffer.readKafkaString(flexible: false, nullable: true, field: "clientId")
        }
        if headerVersion >= 2 { try buffer.skipKafkaTaggedFields() }
    }
}

/// The header in front of every response body: the correlation id, plus tagged fields in v1.
public struct KafkaResponseHeader: Sendable, Equatable {
    public var correlationId: Int32

    public init(correlationId: Int32) {
        self.correlationId = correlationId
    }

    public func write(to buffer: inout ByteBuffer, headerVersion: Int16) {
        buffer.writeInteger(correlationId)
        if headerVersion >= 1 { buffer.writeKafkaUnsignedVarint(0) }
    }

    public init(from buffer: inout ByteBuffer, headerVersion: Int16) throws(KafkaCodecError) {
        correlationId = try buffer.readKafkaInteger(Int32.self, field: "correlationId")
        if headerVersion >= 1 { try buffer.skipKafkaTaggedFields() }
    }
}

extension ByteBuffer {
    public mutating func skipKafkaTaggedFields() throws(KafkaCodecError) {
        let count = try readKafkaUnsignedVarint()
        for _ in 0..<count {
            _ = try readKafkaUnsignedVarint()
            _ = try readKafkaTaggedField()
        }
    }
}
