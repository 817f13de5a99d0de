import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Kafka listener against real clients: kcat (librdkafka 2.0), confluent-kafka
/// (librdkafka 2.x) and kafka-python, plus raw frames for what no client sends.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct KafkaListenerTests {
    static let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "kcat"

    static func daemon(_ extra: String = "") async throws -> DaemonProcess {
        let daemon = try DaemonProcess(extraConfig: """
            [[topics]]
            name = "events"
            partitions = 2
            \(extra)
            """)
        try await daemon.start()
        return daemon
    }

    /// Whether an edge's one upstream reports no lag, in total and for each of its partitions.
    static func replicationCaughtUp(_ edge: DaemonProcess, partitions: Int, timeout: Duration) async throws -> Bool {
        try await eventually(timeout: timeout) {
            let (_, answer) = try await edge.request(.GET, "/v1/replication")
            return answer.components(separatedBy: #""lag_records":0"#).count - 1 == partitions + 1
        }
    }

    @Test func kcatListsProducesAndConsumes() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let bootstrap = "127.0.0.1:\(daemon.kafkaPort)"
        let list = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-L"])
        #expect(list.0 == 0, "\(list.2)")
        #expect(list.1.contains("broker 1 at \(bootstrap)"))
        #expect(list.1.contains("topic \"events\" with 2 partitions"))
        let lines = (0..<20).map { "key\($0 % 4):value \($0)" }
        let produce = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-P", "-t", "events", "-K:"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(produce.0 == 0, "\(produce.2)")
        let consume = try DaemonProcess.runProgram(Self.kcat, ["-b", bootstrap, "-C", "-t", "events", "-o", "beginning", "-e", "-f", "%p %k=%s\\n"])
        #expect(consume.0 == 0, "\(consume.2)")
        let read = consume.1.split(separator: "\n").map(String.init)
        #expect(Set(read.map { String($0.dropFirst(2)) }) == Set(lines.map { $0.replacingOccurrences(of: ":", with: "=") }))
        // One key, one partition, as Kafka's partitioner places it.
        let partitionsOfKey = Dictionary(grouping: read, by: { $0.split(separator: " ")[1].split(separator: "=")[0] })
            .mapValues { Set($0.map { $0.prefix(1) }) }
        #expect(partitionsOfKey.values.allSatisfy { $0.count == 1 })
    }

    @Test(arguments: ["none", "gzip", "snappy", "lz4", "zstd"])
    func confluentKafkaProducesWithEveryCodecAndReadsBack(codec: String) async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let bootstrap = "127.0.0.1:\(daemon.kafkaPort)"
        let produce = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_produce.py"), "--bootstrap", bootstrap, "--topic", "events",
            "--count", "500", "--codec", codec, "--prefix", codec,
        ])
        #expect(produce.status == 0, "\(produce.stdout) \(produce.stderr)")
        let records = try await readUpstream(bootstrap: bootstrap, topic: "events", expect: 500, timeout: 30, extraWait: 0.5)
        #expect(records.count == 500)
        #expect(Set(records.compactMap { $0.valueText?.split(separator: " ").first.map(String.init) })
            == Set((0..<500).map { "\(codec)-\($0)" }))
        for record in records {
            let index = Int(record.valueText!.split(separator: " ")[0].split(separator: "-")[1])!
            #expect(record.keyText == "k\(index % 7)")
            #expect(record.headerPairs.first?.1 == "\(index)")
        }
        // Stored as the producer compressed it: read the batch back raw.
        let batch = try await Self.firstStoredBatch(daemon, topic: "events")
        #expect(batch.codec == CompressionCodec(kafkaName: codec), "\(codec) stored as \(String(describing: batch.codec))")
        #expect(batch.producerId >= 0, "an idempotent producer's batch")
    }

    /// The first batch of partition 0 as stored, read with a raw Fetch.
    static func firstStoredBatch(_ daemon: DaemonProcess, topic: String) async throws -> RecordBatch {
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        let fetch = FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: topic, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ])
        // v12: topics by name (v13 on, the client would have to look up topic ids first).
        let bytes = try #require(try await connection.send(fetch, version: 12).responses.first?.partitions.first?.records)
        return try RecordBatch(validating: bytes.getSlice(at: bytes.readerIndex, length: RecordBatch.frameSize(in: bytes, at: bytes.readerIndex)!)!)
    }

    /// snappy as the storage codec: records ingested over HTTP are stored snappy-compressed and
    /// read back by librdkafka, kafka-python and the HTTP API.
    @Test func snappyAsTheStorageCodecReadsBackEverywhere() async throws {
        let daemon = try await Self.daemon("""
            [[topics]]
            name = "compressed"
            partitions = 1
            codec = "snappy"
            """)
        defer { daemon.remove() }
        let lines = (0..<200).map { #"{"key":"k\#($0 % 3)","value":"reading \#($0) of a sensor that repeats itself"}"# }
        let (status, body) = try await daemon.request(
            .POST, "/v1/topics/compressed/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
        #expect(status == 200, "\(body)")
        let batch = try await Self.firstStoredBatch(daemon, topic: "compressed")
        #expect(batch.codec == .snappy)
        let bootstrap = "127.0.0.1:\(daemon.kafkaPort)"
        let expected = Set((0..<200).map { #""reading \#($0) of a sensor that repeats itself""# })
        let byLibrdkafka = try await readUpstream(bootstrap: bootstrap, topic: "compressed", expect: 200, timeout: 30, extraWait: 0.5)
        #expect(Set(byLibrdkafka.compactMap(\.valueText)) == expected)
        let byKafkaPython = try readWithKafkaPython(bootstrap: bootstrap, topic: "compressed", expect: 200)
        #expect(Set(byKafkaPython.compactMap(\.valueText)) == expected)
        let (read, records) = try await daemon.request(.GET, "/v1/topics/compressed/partitions/0/records?offset=0&max_records=500")
        #expect(read == 200 && records.contains("reading 199 of a sensor"), "HTTP read: \(records.prefix(300))")
        #expect(try await daemon.stop() == 0)
    }

    /// kafka-python frames snappy the xerial way (as the Java client does); librdkafka reads it too.
    @Test(arguments: ["gzip", "snappy"])
    func kafkaPythonProducesAndConsumes(codec: String) async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let bootstrap = "127.0.0.1:\(daemon.kafkaPort)"
        let produce = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_produce.py"), "--client", "kafka-python", "--bootstrap", bootstrap,
            "--topic", "kp", "--count", "300", "--codec", codec,
        ])
        #expect(produce.status == 0, "\(produce.stdout) \(produce.stderr)")
        let records = try readWithKafkaPython(bootstrap: bootstrap, topic: "kp", expect: 300)
        #expect(records.count == 300)
        #expect(Set(records.compactMap { $0.valueText?.split(separator: " ").first.map(String.init) }) == Set((0..<300).map { "r-\($0)" }))
        let byLibrdkafka = try await readUpstream(bootstrap: bootstrap, topic: "kp", expect: 300, timeout: 30, extraWait: 0.5)
        let readByLibrdkafka: [String] = byLibrdkafka.compactMap(\.valueText).sorted()
        let readByKafkaPython: [String] = records.compactMap(\.valueText).sorted()
        #expect(readByLibrdkafka == readByKafkaPython)
        #expect(try await Self.firstStoredBatch(daemon, topic: "kp").codec == CompressionCodec(kafkaName: codec))
        // The topic was created on demand (Metadata with auto-creation) with the default count.
        let (_, topic) = try await daemon.request(.GET, "/v1/topics/kp")
        #expect(topic.contains("\"partitions\""))
    }

    @Test func recordsIngestedOverHTTPAndMQTTReadThroughTheListenerWithTheSameOffsetsKeysAndHeaders() async throws {
        let mosquitto = try MQTTTestBroker()
        let daemon = try await Self.daemon("""
            [[topics]]
            name = "sensors"
            partitions = 1

            [[mqtt.brokers]]
            name = "local"
            port = \(mosquitto.port)
            client_id = "edgelog-listener-test"

            [[mqtt.routes]]
            filter = "sensors/{device}/#"
            topic = "sensors"
            key = "{device}"
            """)
        defer { daemon.remove() }
        let body = (0..<50).map { #"{"key":"dev-\#($0 % 3)","value":{"n":\#($0)},"headers":{"src":"http"}}"# }.joined(separator: "\n")
        let (status, answer) = try await daemon.request(.POST, "/v1/topics/events/records", contentType: "application/x-ndjson", body: body)
        #expect(status == 200)
        let json = try JSONSerialization.jsonObject(with: Data(answer.utf8)) as! [String: Any]
        let offsets = (json["offsets"] as! [[String: Any]]).map { ($0["partition"] as! Int, $0["offset"] as! Int) }
        let records = try await readUpstream(bootstrap: "127.0.0.1:\(daemon.kafkaPort)", topic: "events", expect: 50, timeout: 30)
        #expect(records.count == 50)
        #expect(Set(records.map { "\($0.partition)/\($0.offset)" }) == Set(offsets.map { "\($0.0)/\($0.1)" }))
        #expect(records.allSatisfy { $0.headerPairs.first { $0.0 == "src" }?.1 == "http" })
        #expect(Set(records.compactMap(\.keyText)) == ["dev-0", "dev-1", "dev-2"])

        for index in 0..<5 { try mosquitto.publish("sensors/pump-\(index)/temperature", Array("{\"c\":\(20 + index)}".utf8)) }
        let fromMQTT = try await readUpstream(bootstrap: "127.0.0.1:\(daemon.kafkaPort)", topic: "sensors", expect: 5, timeout: 30)
        #expect(fromMQTT.map(\.offset) == [0, 1, 2, 3, 4])
        #expect(fromMQTT.map(\.keyText) == (0..<5).map { "pump-\($0)" })
        #expect(fromMQTT.allSatisfy { record in record.headerPairs.contains { $0.1 == "sensors/\(record.keyText!)/temperature" } },
            "the MQTT topic travels as a header: \(fromMQTT.first?.headerPairs ?? [])")
    }

    @Test func idempotentRetriesAreAnsweredNotStoredTwice() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        let producer = try await connection.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1))
        #expect(producer.errorCode == 0 && producer.producerId >= 0)
        func produce(sequence: Int32, count: Int) async throws -> ProduceResponse.PartitionProduceResponse {
            var builder = RecordBatchBuilder(codec: .gzip)
            for index in 0..<count { builder.append(Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "r\(index)"))) }
            builder.producer = .init(id: producer.producerId, epoch: producer.producerEpoch, baseSequence: sequence)
            var bytes = ByteBuffer()
            _ = try builder.finish(baseOffset: 0, into: &bytes)
            let response = try await connection.send(ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [
                .init(name: "events", partitionData: [.init(index: 0, records: bytes)]),
            ]))
            return try #require(response.responses.first?.partitionResponses.first)
        }
        let first = try await produce(sequence: 0, count: 5)
        #expect(first.errorCode == 0 && first.baseOffset == 0)
        let retry = try await produce(sequence: 0, count: 5)
        #expect(retry.errorCode == 0 && retry.baseOffset == 0, "a retry gets the original offset")
        let gap = try await produce(sequence: 9, count: 1)
        #expect(KafkaErrorCode(gap.errorCode) == .outOfOrderSequenceNumber)
        let next = try await produce(sequence: 5, count: 2)
        #expect(next.errorCode == 0 && next.baseOffset == 5)
        let (_, topic) = try await daemon.request(.GET, "/v1/topics/events")
        #expect(topic.contains(#""log_end_offset":7"#), "7 records stored, not 12: \(topic)")
    }

    @Test func badFramesCloseTheConnectionAndNothingElse() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let port = daemon.kafkaPort

        let unknownKey = try RawSocket(port: port)
        unknownKey.sendRequest(apiKey: 999, version: 0)
        #expect(unknownKey.readUntilClosed() == ([], true), "unknown api key: closed without an answer")

        let oldProduce = try RawSocket(port: port)
        oldProduce.sendRequest(apiKey: 0, version: 1)
        #expect(oldProduce.readUntilClosed().closed, "Produce v1 (message sets) is refused")

        // ApiVersions in a version we do not know: answered in v0 with error 35 and our ranges.
        let futureApiVersions = try RawSocket(port: port)
        futureApiVersions.sendRequest(apiKey: 18, version: 99, correlationId: 42)
        var answer = try #require(futureApiVersions.readFrame().map { ByteBuffer(bytes: $0) })
        #expect(answer.readInteger(as: Int32.self) == 42)
        let versions = try ApiVersionsResponse(from: &answer, version: 0)
        #expect(KafkaErrorCode(versions.errorCode) == .unsupportedVersion)
        #expect(versions.apiKeys.contains { $0.apiKey == 0 && $0.minVersion == 3 })

        let oversized = try RawSocket(port: port)
        oversized.send([0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(oversized.readUntilClosed().closed, "a frame over max_request_bytes closes the connection")

        let truncated = try RawSocket(port: port)
        truncated.send([0, 0, 0, 50, 0, 3, 0, 9])
        truncated.shutdownWrite()
        #expect(truncated.readUntilClosed().closed, "a frame cut short ends the connection")

        let garbage = try RawSocket(port: port)
        garbage.sendRequest(apiKey: 3, version: 9, body: [0xFF, 0xFF, 0xFF])
        #expect(garbage.readUntilClosed().closed, "a malformed Metadata body closes the connection")

        // After all that the listener still serves.
        let (status, _) = try await daemon.request(.GET, "/healthz")
        #expect(status == 200)
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: port), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        let metadata = try await connection.send(MetadataRequest(topics: nil))
        #expect(metadata.topics.map(\.name) == ["events"])
    }

    @Test func requestErrorsCarryKafkasErrorCodes() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        var builder = RecordBatchBuilder(codec: .none)
        builder.append(Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "x")))
        var batch = ByteBuffer()
        _ = try builder.finish(baseOffset: 0, into: &batch)

        func produce(_ topic: String, _ partition: Int32, _ records: ByteBuffer) async throws -> KafkaErrorCode {
            let response = try await connection.send(ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [
                .init(name: topic, partitionData: [.init(index: partition, records: records)]),
            ]))
            return KafkaErrorCode(response.responses.first?.partitionResponses.first?.errorCode ?? -1)
        }
        #expect(try await produce("nope", 0, batch) == .unknownTopicOrPartition)
        #expect(try await produce("events", 7, batch) == .unknownTopicOrPartition)
        var corrupt = batch
        corrupt.setInteger(UInt8(0x55), at: corrupt.writerIndex - 1)
        #expect(try await produce("events", 0, corrupt) == .corruptMessage, "a CRC mismatch is refused")
        #expect(try await produce("events", 0, batch.getSlice(at: 0, length: 30)!) == .corruptMessage, "a truncated batch is refused")
        // An idempotent batch whose last offset delta lies about its record count (once a way
        // to overflow the sequence arithmetic) is refused, and the broker lives on.
        var lying = try RecordBatch(validating: batch)
        var bytes = lying.buffer
        bytes.setInteger(Int32.max, at: bytes.readerIndex + RecordBatch.Layout.lastOffsetDelta)
        lying = try RecordBatch(validating: bytes)
        lying.setProducer(id: 77, epoch: 0, baseSequence: Int32.max - 1)  // recomputes the CRC
        #expect(try await produce("events", 0, lying.buffer) == .invalidRecord)
        let (_, topic) = try await daemon.request(.GET, "/v1/topics/events")
        #expect(!topic.contains(#""log_end_offset":1"#), "nothing refused was stored: \(topic)")

        let fetch = try await connection.send(FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: "events", partitions: [.init(partition: 0, fetchOffset: 99, partitionMaxBytes: 1 << 20)]),
            .init(topic: "nope", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ]), version: 12)
        #expect(fetch.responses.map { KafkaErrorCode($0.partitions[0].errorCode) } == [.offsetOutOfRange, .unknownTopicOrPartition])

        let offsets = try await connection.send(ListOffsetsRequest(replicaId: -1, topics: [
            .init(name: "events", partitions: [.init(partitionIndex: 0, timestamp: -2), .init(partitionIndex: 1, timestamp: -1)]),
            .init(name: "nope", partitions: [.init(partitionIndex: 0, timestamp: -1)]),
        ]))
        #expect(offsets.topics[0].partitions.map(\.offset) == [0, 0])
        #expect(KafkaErrorCode(offsets.topics[1].partitions[0].errorCode) == .unknownTopicOrPartition)

        let created = try await connection.send(CreateTopicsRequest(topics: [
            .init(name: "fresh", numPartitions: 3, replicationFactor: 1),
            .init(name: "events", numPartitions: 1, replicationFactor: 1),
            .init(name: "bad name!", numPartitions: 1, replicationFactor: 1),
            .init(name: "replicated", numPartitions: 1, replicationFactor: 3),
        ], timeoutMs: 5000))
        #expect(created.topics.map { KafkaErrorCode($0.errorCode) }
            == [.none, .topicAlreadyExists, .invalidTopicException, .invalidReplicationFactor])
        let deleted = try await connection.send(DeleteTopicsRequest(topics: [.init(name: "fresh"), .init(name: "nope")], topicNames: ["fresh", "nope"], timeoutMs: 5000))
        #expect(deleted.responses.map { KafkaErrorCode($0.errorCode) } == [.none, .unknownTopicOrPartition])

        let configs = try await connection.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "events")]))
        let entries = Dictionary(uniqueKeysWithValues: (configs.results.first?.configs ?? []).map { ($0.name, $0.value) })
        #expect(entries["compression.type"] == "gzip" && entries["cleanup.policy"] == "delete")
    }

    @Test func aFetchWaitsForDataUpToMaxWait() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        let waiting = Task {
            try await connection.send(FetchRequest(maxWaitMs: 20_000, minBytes: 1, maxBytes: 1 << 20, topics: [
                .init(topic: "events", partitions: [
                    .init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20),
                    .init(partition: 1, fetchOffset: 0, partitionMaxBytes: 1 << 20),
                ]),
            ]), version: 12)
        }
        try await Task.sleep(for: .milliseconds(300))
        let (status, _) = try await daemon.request(
            .POST, "/v1/topics/events/records?partition=1", contentType: "application/x-ndjson", body: #"{"value":"late"}"#)
        #expect(status == 200)
        // Answered when the record lands, long before max_wait_ms (a timeout here would fail
        // the request after 30 s rather than pass).
        let response = try await waiting.value
        let stored = response.responses[0].partitions.reduce(0) { $0 + ($1.records?.readableBytes ?? 0) }
        #expect(stored > 0, "\(response)")
    }

    @Test func hubModeAcceptsAnotherEdgelogsReplication() async throws {
        let hub = try await Self.daemon()
        defer { hub.remove() }
        let edge = try DaemonProcess(extraConfig: """
            [[topics]]
            name = "sensors"
            partitions = 2
            codec = "zstd"

            [[upstreams]]
            name = "hub"
            bootstrap = ["127.0.0.1:\(hub.kafkaPort)"]
            topic_template = "site7.{topic}"
            retry_backoff_ms = 50
            checkpoint_interval_ms = 100
            """)
        defer { edge.remove() }
        try await edge.start()
        let body = (0..<400).map { #"{"key":"pump-\#($0 % 9)","value":"reading \#($0)"}"# }.joined(separator: "\n")
        let (status, _) = try await edge.request(.POST, "/v1/topics/sensors/records", contentType: "application/x-ndjson", body: body)
        #expect(status == 200)
        let caughtUp = try await Self.replicationCaughtUp(edge, partitions: 2, timeout: .seconds(30))
        #expect(caughtUp)
        let records = try await readUpstream(bootstrap: "127.0.0.1:\(hub.kafkaPort)", topic: "site7.sensors", expect: 400, timeout: 30, extraWait: 0.5)
        #expect(records.count == 400, "every record once in the hub")
        #expect(Set(records.compactMap(\.valueText)) == Set((0..<400).map { "\"reading \($0)\"" }))
        // The hub stored the edge's zstd batches as they came.
        let (_, dump, _) = try DaemonProcess.cli(["log", "dump", hub.dataDirectory + "/site7.sensors-0"])
        #expect(dump.contains("compresscodec: zstd") && !dump.contains("compresscodec: none"))
        #expect(try await edge.stop() == 0)
        #expect(try await hub.stop() == 0)
    }


}

extension CompressionCodec {
    init?(kafkaName: String) {
        switch kafkaName {
        case "none": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }
}
