import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The Kafka listener, continued: TLS and SASL, pipelined and zero-copy fetches, slow
/// clients, running out of descriptors, acks=0 and unknown codecs.
extension KafkaListenerTests {
    @Test func tlsAndSASLGuardTheListener() async throws {
        let certificates = try MQTTTestBroker(start: false, tls: true)  // a CA and a certificate for 127.0.0.1
        defer { withExtendedLifetime(certificates) {} }  // its deinit deletes the files
        let hub = try DaemonProcess(
            extraConfig: "[[topics]]\nname = \"events\"\npartitions = 1\n\n[[kafka.users]]\nname = \"edge\"\npassword = \"s3cret\"\n",
            kafkaConfig: "tls_cert_file = \"\(certificates.directory)/server.crt\"\ntls_key_file = \"\(certificates.directory)/server.key\"\n")
        defer { hub.remove() }
        try await hub.start()
        let bootstrap = "127.0.0.1:\(hub.kafkaPort)"
        let tls = ["-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=\(certificates.directory)/ca.crt"]
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let good = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-L", "-m", "10"] + tls + [
                "-X", "sasl.mechanisms=\(mechanism)", "-X", "sasl.username=edge", "-X", "sasl.password=s3cret",
            ])
            #expect(good.0 == 0 && good.1.contains("topic \"events\""), "\(mechanism): \(good.2)")
            let bad = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-L", "-m", "2"] + tls + [
                "-X", "sasl.mechanisms=\(mechanism)", "-X", "sasl.username=edge", "-X", "sasl.password=wrong",
            ])
            #expect(bad.0 != 0, "\(mechanism) with a wrong password is refused")
        }
        let plaintext = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-L", "-m", "2"])
        #expect(plaintext.0 != 0, "no TLS, no SASL: refused")

        // An edge replicating into the guarded hub, with the same TLS and SCRAM.
        let edge = try DaemonProcess(extraConfig: """
            [[topics]]
            name = "events"
            partitions = 1

            [[upstreams]]
            name = "hub"
            bootstrap = ["\(bootstrap)"]
            tls_ca_file = "\(certificates.directory)/ca.crt"
            sasl_mechanism = "SCRAM-SHA-512"
            sasl_username = "edge"
            sasl_password = "s3cret"
            topic_template = "edge.{topic}"
            retry_backoff_ms = 50
            """)
        defer { edge.remove() }
        try await edge.start()
        let body = (0..<30).map { #"{"value":"guarded \#($0)"}"# }.joined(separator: "\n")
        _ = try await edge.request(.POST, "/v1/topics/events/records", contentType: "application/x-ndjson", body: body)
        let arrived = try await eventually(timeout: .seconds(30)) {
            let (_, topic) = try await hub.request(.GET, "/v1/topics/edge.events")
            return topic.contains(#""log_end_offset":30"#)
        }
        #expect(arrived, "replicated over TLS with SCRAM-SHA-512")
        // Consumed back over TLS: the record sets are read into memory and encrypted (no sendfile).
        let consumed = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-C", "-t", "edge.events", "-o", "beginning", "-e", "-q"] + tls + [
            "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=edge", "-X", "sasl.password=s3cret",
        ])
        #expect(consumed.0 == 0, "\(consumed.2)")
        #expect(consumed.1.split(separator: "\n").count == 30 && consumed.1.contains("guarded 29"), "\(consumed.1)")
        #expect(try await edge.stop() == 0)
        #expect(try await hub.stop() == 0)
    }

    /// Fetches are answered from the segment files with sendfile; a client that pipelines many
    /// of them without reading is pushed back (its connection is not read past the bound on
    /// pending answers) and still gets every answer, whole and in order.
    @Test func pipelinedFetchesAreAnsweredInOrderFromTheSegmentFiles() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        for chunk in 0..<4 {
            let body = (0..<250).map { #"{"key":"k\#($0)","value":"chunk \#(chunk) record \#($0) \#(String(repeating: "x", count: 200))"}"# }
                .joined(separator: "\n")
            let (status, _) = try await daemon.request(
                .POST, "/v1/topics/events/records?partition=0", contentType: "application/x-ndjson", body: body)
            #expect(status == 200)
        }
        var fetch = ByteBuffer()
        try FetchRequest(replicaId: -1, maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, topics: [
            .init(topic: "events", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])
        ]).write(to: &fetch, version: 11)
        let requests = 300
        let socket = try RawSocket(port: daemon.kafkaPort)
        let body = Array(fetch.readableBytesView)
        // Sent from a thread of its own: once the broker stops reading, these sends block.
        let sender = Thread {
            for correlationId in 1...requests {
                socket.sendRequest(apiKey: 1, version: 11, correlationId: Int32(correlationId), body: body)
            }
        }
        sender.start()
        var expectedRecords: ByteBuffer?
        for correlationId in 1...requests {
            let frame = try #require(socket.readFrame(), "answer \(correlationId)")
            var buffer = ByteBuffer(bytes: frame)
            let header = try KafkaResponseHeader(from: &buffer, headerVersion: 0)
            #expect(header.correlationId == Int32(correlationId))
            let response = try FetchResponse(from: &buffer, version: 11)
            let records = try #require(response.responses.first?.partitions.first?.records)
            if let expectedRecords {
                #expect(records == expectedRecords, "every answer carries the same stored batches")
            } else {
                // Whole batches from offset 0 on, back to back, CRCs intact (a fetch reads from
                // one segment, so it need not reach the log end).
                var batches = records
                var next: Int64 = 0
                while let size = RecordBatch.frameSize(in: batches, at: batches.readerIndex), size <= batches.readableBytes {
                    let batch = try RecordBatch(validating: batches.readSlice(length: size)!)
                    try batch.verifyChecksum()
                    #expect(batch.baseOffset == next)
                    next = batch.lastOffset + 1
                }
                #expect(batches.readableBytes == 0 && next > 0, "whole batches only")
                expectedRecords = records
            }
        }
    }

    /// A client that keeps sending fetches but never reads their answers cannot hold up a
    /// graceful stop: its connection is closed when the listener shuts down.
    @Test func aClientThatStopsReadingDoesNotHoldUpTheStop() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        // Values that do not compress (the topic's batches are gzip): each answer is ~300 kB.
        let body = (0..<1000).map { #"{"value":"\#($0) \#((0..<8).map { _ in UUID().uuidString }.joined())"}"# }
            .joined(separator: "\n")
        let (status, _) = try await daemon.request(
            .POST, "/v1/topics/events/records?partition=0", contentType: "application/x-ndjson", body: body)
        #expect(status == 200)
        var fetch = ByteBuffer()
        try FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: "events", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)])
        ]).write(to: &fetch, version: 11)
        let socket = try RawSocket(port: daemon.kafkaPort)
        let request = Array(fetch.readableBytesView)
        let sent = Atomic<Int>(0)
        let sender = Thread {
            for correlationId in 1...2000 {  // blocks once the broker stops reading; ends when it closes
                socket.sendRequest(apiKey: 1, version: 11, correlationId: Int32(correlationId), body: request)
                sent.add(1, ordering: .relaxed)
            }
        }
        sender.start()
        // Answers of ~300 kB each: far more than the socket buffers hold, so the writer is stuck.
        let stuck = try await eventually(timeout: .seconds(20)) { sent.load(ordering: .relaxed) >= 200 }
        #expect(stuck)
        #expect(try await daemon.stop(timeout: .seconds(25)) == 0, "stopped cleanly: \(daemon.stderr.suffix(2000))")
        socket.shutdownWrite()
    }

    /// Out of file descriptors, accepting fails (EMFILE); the listener logs it (rate-limited)
    /// and keeps accepting once descriptors are free again, instead of stopping for good.
    @Test func runningOutOfDescriptorsDoesNotEndTheListener() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let pid = try #require(daemon.process?.processIdentifier)
        let lowered = try DaemonProcess.runProgram("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=64:64"])
        #expect(lowered.0 == 0, "\(lowered.2)")
        var sockets: [RawSocket] = []
        for _ in 0..<100 { if let socket = try? RawSocket(port: daemon.kafkaPort) { sockets.append(socket) } }
        let refused = try await eventually { daemon.stderr.contains("could not accept a connection") }
        #expect(refused, "EMFILE was reached and logged")
        sockets.removeAll()
        _ = try DaemonProcess.runProgram("/usr/bin/prlimit", ["--pid", "\(pid)", "--nofile=65536:65536"])
        let listed = try DaemonProcess.runProgram(Self.kcat, ["-b", "127.0.0.1:\(daemon.kafkaPort)", "-L", "-m", "10"])
        #expect(listed.0 == 0 && listed.1.contains("topic \"events\""), "still accepting: \(listed.2)")
        #expect(daemon.stderr.components(separatedBy: "could not accept").count - 1 <= 3, "rate-limited")
        #expect(try await daemon.stop() == 0)
    }

    @Test func acksZeroGetsNoAnswerAndAnUnknownCodecIsRefused() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        // acks=0: the broker must not answer; the next request's answer comes first.
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "fire and forget")))
        var batch = ByteBuffer()
        _ = try builder.finish(baseOffset: 0, into: &batch)
        var produce = ByteBuffer()
        try ProduceRequest(acks: 0, timeoutMs: 1000, topicData: [.init(name: "events", partitionData: [.init(index: 0, records: batch)])])
            .write(to: &produce, version: 3)
        var versions = ByteBuffer()
        try ApiVersionsRequest().write(to: &versions, version: 0)
        let socket = try RawSocket(port: daemon.kafkaPort)
        socket.sendRequest(apiKey: 0, version: 3, correlationId: 1, body: Array(produce.readableBytesView))
        socket.sendRequest(apiKey: 18, version: 0, correlationId: 2, body: Array(versions.readableBytesView))
        let first = try #require(socket.readFrame())
        #expect(Array(first.prefix(4)) == [0, 0, 0, 2], "the first answer is the ApiVersions one")
        let stored = try await eventually {
            let (_, topic) = try await daemon.request(.GET, "/v1/topics/events")
            return topic.contains(#""log_end_offset":1"#)
        }
        #expect(stored, "the acks=0 record was still stored")

        // A batch whose codec bits name no codec (5) is refused as Kafka does, and not stored.
        var unknownCodec = batch
        unknownCodec.setInteger(Int16(5), at: unknownCodec.readerIndex + RecordBatch.Layout.attributes)
        var restamped = try RecordBatch(validating: unknownCodec)
        restamped.setProducer(id: -1, epoch: -1, baseSequence: -1)  // recomputes the CRC
        var refused = ByteBuffer()
        try ProduceRequest(acks: -1, timeoutMs: 1000, topicData: [.init(name: "events", partitionData: [.init(index: 0, records: restamped.buffer)])])
            .write(to: &refused, version: 3)
        socket.sendRequest(apiKey: 0, version: 3, correlationId: 3, body: Array(refused.readableBytesView))
        var answer = ByteBuffer(bytes: try #require(socket.readFrame()).dropFirst(4))
        let response = try ProduceResponse(from: &answer, version: 3)
        #expect(response.responses.first?.partitionResponses.first?.errorCode == 76, "UNSUPPORTED_COMPRESSION_TYPE")
        let (_, topic) = try await daemon.request(.GET, "/v1/topics/events")
        #expect(topic.contains(#""log_end_offset":1"#), "nothing of the refused batch stored: \(topic)")
    }
}
