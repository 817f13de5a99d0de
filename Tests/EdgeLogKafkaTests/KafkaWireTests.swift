import EdgeLogKafka
import NIOCore
import Testing

@Suite struct KafkaWireTests {
    @Test func unsignedVarintsMatchKIP482Examples() throws {
        let cases: [(UInt32, [UInt8])] = [
            (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (300, [0xAC, 0x02]),
            (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (value, bytes) in cases {
            var buffer = ByteBuffer()
            buffer.writeKafkaUnsignedVarint(value)
            #expect(Array(buffer.readableBytesView) == bytes)
            #expect(try buffer.readKafkaUnsignedVarint() == value)
        }
        var tooLong = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: KafkaCodecError.malformedVarint) { try tooLong.readKafkaUnsignedVarint() }
    }

    @Test func classicAndCompactStrings() throws {
        var buffer = ByteBuffer()
        try buffer.writeKafkaString("ab", flexible: false, nullable: false, field: "s")
        try buffer.writeKafkaString(nil, flexible: false, nullable: true, field: "s")
        try buffer.writeKafkaString("ab", flexible: true, nullable: false, field: "s")
        try buffer.writeKafkaString(nil, flexible: true, nullable: true, field: "s")
        #expect(Array(buffer.readableBytesView) == [0, 2, 0x61, 0x62, 0xFF, 0xFF, 3, 0x61, 0x62, 0])
        #expect(try buffer.readKafkaString(flexible: false, nullable: false, field: "s") == "ab")
        #expect(try buffer.readKafkaString(flexible: false, nullable: true, field: "s") == nil)
        #expect(try buffer.readKafkaString(flexible: true, nullable: false, field: "s") == "ab")
        #expect(try buffer.readKafkaString(flexible: true, nullable: true, field: "s") == nil)
    }

    @Test func nullWhereTheVersionForbidsItIsAnError() {
        var buffer = ByteBuffer()
        #expect(throws: KafkaCodecError.unexpectedNull(field: "name")) {
            try buffer.writeKafkaString(nil, flexible: false, nullable: false, field: "name")
        }
        var null = ByteBuffer(bytes: [0xFF, 0xFF])
        #expect(throws: KafkaCodecError.unexpectedNull(field: "name")) {
            try null.readKafkaString(flexible: false, nullable: false, field: "name")
        }
    }

    @Test func truncatedAndLyingLengthsAreErrorsNotTraps() {
        var shortString = ByteBuffer(bytes: [0, 9, 0x61])
        #expect(throws: KafkaCodecError.truncated(field: "topic")) {
            try shortString.readKafkaString(flexible: false, nullable: false, field: "topic")
        }
        var hugeArray = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF, 1, 2])
        #expect(throws: KafkaCodecError.invalidLength(field: "topics", length: Int(Int32.max))) {
            try hugeArray.readKafkaArrayLength(flexible: false, field: "topics")
        }
        var badUTF8 = ByteBuffer(bytes: [0, 2, 0xC3, 0x28])
        #expect(throws: KafkaCodecError.invalidUTF8(field: "s")) {
            try badUTF8.readKafkaString(flexible: false, nullable: false, field: "s")
        }
        var cut = ByteBuffer(bytes: [0, 1])
        #expect(throws: KafkaCodecError.self) { try MetadataRequest(from: &cut, version: 1) }
    }

    @Test func unknownTaggedFieldsAreSkipped() throws {
        // ApiVersionsRequest v3: client software name "a", version "1", then a tagged section
        // holding tag 99 (unknown) with three bytes.
        var buffer = ByteBuffer(bytes: [2, 0x61, 2, 0x31, 1, 99, 3, 1, 2, 3])
        let request = try ApiVersionsRequest(from: &buffer, version: 3)
        #expect(request.clientSoftwareName == "a")
        #expect(request.clientSoftwareVersion == "1")
        #expect(buffer.readableBytes == 0)
    }

    @Test func knownTaggedFieldsAreDecoded() throws {
        var response = ApiVersionsResponse(apiKeys: [.init(apiKey: 0, minVersion: 3, maxVersion: 11)])
        response.finalizedFeaturesEpoch = 42
        var buffer = ByteBuffer()
        try response.write(to: &buffer, version: 3)
        let decoded = try ApiVersionsResponse(from: &buffer, version: 3)
        #expect(decoded.finalizedFeaturesEpoch == 42)
        // At its default the tagged field is left off the wire entirely.
        var plain = ByteBuffer()
        try ApiVersionsResponse().write(to: &plain, version: 3)
        // error code, empty compact array, throttle time, zero tagged fields.
        #expect(Array(plain.readableBytesView) == [0, 0, 1, 0, 0, 0, 0, 0])
    }

    @Test func requestHeaderKeepsClassicClientIdInV2() throws {
        var buffer = ByteBuffer()
        let header = KafkaRequestHeader(apiKey: 3, apiVersion: 12, correlationId: 7, clientId: "e")
        try header.write(to: &buffer, headerVersion: 2)
        #expect(Array(buffer.readableBytesView) == [0, 3, 0, 12, 0, 0, 0, 7, 0, 1, 0x65, 0])
        var decoded = try KafkaRequestHeader(from: &buffer)
        try decoded.readRest(from: &buffer, headerVersion: 2)
        #expect(decoded == header)
    }

    @Test func apiVersionsResponsesAlwaysUseHeaderV0() {
        #expect(ApiVersionsResponse.responseHeaderVersion(3) == 0)
        #expect(MetadataResponse.responseHeaderVersion(12) == 1)
        #expect(MetadataResponse.responseHeaderVersion(8) == 0)
        #expect(MetadataRequest.requestHeaderVersion(9) == 2)
        #expect(ProduceRequest.requestHeaderVersion(8) == 1)
    }
}
