import EdgeLogKafka
import Foundation
import NIOCore

/// A coverage-guided fuzz target (libFuzzer) for the Kafka request decoder: each input is a
/// request frame after its size prefix, read the way the listener reads it (header, then the
/// generated decoder of its API and version). Whatever decodes must encode again and decode
/// to the same bytes; a crash, a trap or a failed check is a bug.
///
/// How to build and run it: `FuzzMain`.
enum KafkaRequestFuzzer: FuzzTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        guard var header = try? KafkaRequestHeader(from: &buffer),
            let api = KafkaAPIKey(rawValue: header.apiKey),
            api.supportedVersions.contains(header.apiVersion),
            (try? header.readRest(from: &buffer, headerVersion: api.isFlexibleRequest(header.apiVersion) ? 2 : 1)) != nil
        else { return }
        roundTrip(api.requestType, &buffer, version: header.apiVersion)
    }

    private static func roundTrip<Request: KafkaRequestMessage>(_: Request.Type, _ buffer: inout ByteBuffer, version: Int16) {
        guard let request = try? Request(from: &buffer, version: version) else { return }
        var first = ByteBuffer()
        do { try request.write(to: &first, version: version) } catch {
            fatalError("\(Request.self) v\(version) decoded but does not encode: \(error)")
        }
        var reread = first
        let again: Request
        do { again = try Request(from: &reread, version: version) } catch {
            fatalError("\(Request.self) v\(version) does not decode its own encoding: \(error)")
        }
        precondition(reread.readableBytes == 0, "\(Request.self) v\(version): \(reread.readableBytes) bytes left over")
        var second = ByteBuffer()
        try! again.write(to: &second, version: version)
        precondition(first == second, "\(Request.self) v\(version) encodes differently after a round trip")
    }

    /// A header for every API and supported version, followed by zeros (empty strings, arrays
    /// and numbers in most encodings): starting points for the fuzzer to mutate.
    static func seeds() -> [(name: String, bytes: [UInt8])] {
        KafkaAPIKey.allCases.flatMap { api in
            api.supportedVersions.map { version in
                var buffer = ByteBuffer()
                try! KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: 1, clientId: "fuzz")
                    .write(to: &buffer, headerVersion: api.isFlexibleRequest(version) ? 2 : 1)
                buffer.writeRepeatingByte(0, count: 48)
                return ("\(api)-v\(version)", Array(buffer.readableBytesView))
            }
        }
    }
}
