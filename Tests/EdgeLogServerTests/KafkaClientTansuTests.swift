import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import Testing

/// The Kafka client against a real broker (Tansu): negotiation, metadata, topic creation,
/// idempotent produce of stored batches, and the failure modes a replicator meets.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1", "set EDGELOG_IT=1"), .serialized)
struct KafkaClientTansuTests {
    static func batch(count: Int, codec: CompressionCodec, start: Int = 0) throws -> RecordBatch {
        var builder = RecordBatchBuilder(codec: codec)
        for index in start..<(start + count) {
            builder.append(Record(
                timestamp: 1_700_000_000_000 + Int64(index), key: ByteBuffer(string: "k\(index % 3)"),
                value: ByteBuffer(string: "value \(index) " + String(repeating: "x", count: 40)),
                headers: [RecordHeader(key: "h", value: ByteBuffer(string: "\(index)"))]))
        }
        var output = ByteBuffer()
        _ = try builder.finish(baseOffset: 1000, into: &output)
        return try RecordBatch(validating: output)
    }

    static func produce(
        _ connection: KafkaConnection, topic: String, partition: Int32, batch: RecordBatch
    ) async throws -> ProduceResponse.PartitionProduceResponse {
        let request = ProduceRequest(acks: -1, timeoutMs: 10_000, topicData: [
            .init(name: topic, partitionData: [.init(index: partition, records: batch.buffer)]),
        ])
        let response = try await connection.send(request)
        return try #require(response.responses.first?.partitionResponses.first)
    }

    @Test func negotiatesCreatesProducesIdempotentlyAndReadsBack() async throws {
        let tansu = try TansuBroker()
        let cluster = KafkaCluster(bootstrap: [tansu.address], configuration: KafkaClientConfiguration())
        defer { Task { await cluster.close() } }

        try await cluster.createTopic("client-test", partitions: 2)
        try await cluster.createTopic("client-test", partitions: 2)  // exists: fine
        let topics = try await cluster.refreshMetadata(topics: ["client-test", "missing-topic"])
        #expect(topics["client-test"]?.partitions.count == 2)
        #expect(topics["missing-topic"]?.error == .unknownTopicOrPartition)

        let leader = try await cluster.leaderConnection(topic: "client-test", partition: 1)
        #expect(try leader.negotiatedVersion(of: ProduceRequest.self) >= 9, "flexible Produce negotiated")
        let producer = try await cluster.initProducerId()

        var first = try Self.batch(count: 5, codec: .gzip)
        first.setBaseOffset(0)
        first.setProducer(id: producer.id, epoch: producer.epoch, baseSequence: 0)
        #expect(first.isChecksumValid)
        let accepted = try await Self.produce(leader, topic: "client-test", partition: 1, batch: first)
        #expect(KafkaErrorCode(accepted.errorCode) == .none)

        // The same batch again is recognised as a retry, not stored twice.
        let retried = try await Self.produce(leader, topic: "client-test", partition: 1, batch: first)
        #expect([KafkaErrorCode.none, .duplicateSequenceNumber].contains(KafkaErrorCode(retried.errorCode)))

        // A gap in the sequence is refused.
        var gap = try Self.batch(count: 2, codec: .none, start: 5)
        gap.setBaseOffset(0)
        gap.setProducer(id: producer.id, epoch: producer.epoch, baseSequence: 9)
        let refused = try await Self.produce(leader, topic: "client-test", partition: 1, batch: gap)
        #expect(KafkaErrorCode(refused.errorCode) == .outOfOrderSequenceNumber)

        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "client-test", expect: 5, extraWait: 1, partitions: "1")
        #expect(records.count == 5)
        #expect(records.map(\.valueText) == (0..<5).map { "value \($0) " + String(repeating: "x", count: 40) })
        #expect(records.map(\.keyText) == (0..<5).map { "k\($0 % 3)" })
        #expect(records.map(\.timestamp) == (0..<5).map { 1_700_000_000_000 + Int64($0) })
        #expect(records.map { $0.headerPairs.first?.1 } == (0..<5).map { "\($0)" })

        // Fetched raw, the batch is still gzip: nothing was recompressed on the way.
        let fetch = FetchRequest(maxWaitMs: 100, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: "client-test", partitions: [.init(partition: 1, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ])
        let fetchVersion = min(try leader.negotiatedVersion(of: FetchRequest.self), 12)  // by name
        let fetched = try await leader.send(fetch, version: fetchVersion)
        let stored = try #require(fetched.responses.first?.partitions.first?.records)
        let upstreamBatch = try RecordBatch(validating: stored.getSlice(at: stored.readerIndex, length: RecordBatch.frameSize(in: stored, at: stored.readerIndex)!)!)
        #expect(upstreamBatch.codec == .gzip)
        #expect(upstreamBatch.recordsSection == first.recordsSection)
    }

    @Test func unreachableBootstrapIsAClearErrorAndTheNextBrokerIsTried() async throws {
        let tansu = try TansuBroker()
        let dead = KafkaBrokerAddress(host: "127.0.0.1", port: try MQTTTestBroker.freePort())
        let onlyDead = KafkaCluster(bootstrap: [dead], configuration: KafkaClientConfiguration())
        await #expect {
            try await onlyDead.refreshMetadata(topics: [])
        } throws: { error in
            guard case .noBrokerReachable(let tried, let last) = error as? KafkaClientError else { return false }
            return tried == [dead.description] && last.contains("cannot connect")
        }
        let deadThenLive = KafkaCluster(bootstrap: [dead, tansu.address], configuration: KafkaClientConfiguration())
        let topics = try await deadThenLive.refreshMetadata(topics: [])
        #expect(topics.isEmpty)
        await deadThenLive.close()
    }

    @Test func aConnectionCutMidRequestFailsThatRequestClearly() async throws {
        let tansu = try TansuBroker()
        let proxy = try FaultProxy(target: tansu.port)
        var configuration = KafkaClientConfiguration()
        configuration.requestTimeout = .seconds(5)
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: proxy.port), configuration: configuration)
        try proxy.command("delay 1000")
        let pending = Task { try await connection.send(MetadataRequest(topics: nil)) }
        try await Task.sleep(for: .milliseconds(200))
        try proxy.command("cut")
        await #expect {
            _ = try await pending.value
        } throws: { error in
            guard let error = error as? KafkaClientError else { return false }
            return error.isConnectionLevel
        }
        #expect(try await eventually { !connection.isActive })
    }

    @Test func aSilentBrokerTimesOutAndTheConnectionIsClosed() async throws {
        let tansu = try TansuBroker()
        let proxy = try FaultProxy(target: tansu.port)
        var configuration = KafkaClientConfiguration()
        configuration.requestTimeout = .milliseconds(500)
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: proxy.port), configuration: configuration)
        try proxy.command("delay 3000")
        await #expect {
            _ = try await connection.send(MetadataRequest(topics: nil))
        } throws: { error in
            guard case .requestTimedOut(_, let api, _) = error as? KafkaClientError else { return false }
            return api == "metadata"
        }
        #expect(try await eventually { !connection.isActive }, "the timed-out connection is closed")
    }
}
