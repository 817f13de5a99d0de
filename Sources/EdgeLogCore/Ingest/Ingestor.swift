public import EdgeLogStorage
public import Logging
import Metrics
import NIOCore

/// Where a record went.
public struct RecordPosition: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
}

/// Why an ingest request was refused. Nothing of a refused request is written.
public enum IngestError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownTopic(String)
    case invalidTopic(String, reason: String)
    case unknownPartition(topic: String, partition: Int32, partitionCount: Int32)
    case recordTooLarge(index: Int, bytes: Int, maxBytes: Int)
    case storage(StorageError)

    public var description: String {
        switch self {
        case .unknownTopic(let topic): "unknown topic '\(topic)' (and auto-creation is off)"
        case .invalidTopic(let topic, let reason): "invalid topic name '\(topic)': \(reason)"
        case .unknownPartition(let topic, let partition, let count):
            "topic '\(topic)' has partitions 0...\(count - 1), not \(partition)"
        case .recordTooLarge(let index, let bytes, let maxBytes):
            "record \(index) is \(bytes) bytes, more than the maximum batch size of \(maxBytes) bytes"
        case .storage(let error): error.description
        }
    }
}

/// The one way records enter the log, for every source (HTTP, MQTT, later Kafka Produce and
/// connectors): resolves (or auto-creates) the topic, chooses partitions (explicit, else Kafka's
/// murmur2 of the key), checks the whole request before writing any of it, appends each
/// partition's share concurrently and returns every record's partition and offset once all
/// of them are committed.
public final class Ingestor: Sendable {
    public let manager: LogManager
    let autoCreateTopics: Bool
    package let defaultPartitions: Int32
    let logger: Logger
    private let recordsCounter: [Source: Counter]
    private let bytesCounter: [Source: Counter]
    private let errorsCounter: [String: Counter]
    private let rates: [Source: RateMeter]

    public enum Source: String, Sendable, CaseIterable {
        case http, mqtt
    }

    public init(manager: LogManager, autoCreateTopics: Bool, defaultPartitions: Int32, logger: Logger) {
        self.manager = manager
        self.autoCreateTopics = autoCreateTopics
        self.defaultPartitions = defaultPartitions
        self.logger = logger
        var records: [Source: Counter] = [:]
        var bytes: [Source: Counter] = [:]
        for source in Source.allCases {
            records[source] = Counter(label: "edgelog_ingest_records_total", dimensions: [("source", source.rawValue)])
            bytes[source] = Counter(label: "edgelog_ingest_bytes_total", dimensions: [("source", source.rawValue)])
        }
        self.recordsCounter = records
        self.bytesCounter = bytes
        var errors: [String: Counter] = [:]
        for kind in IngestError.metricKinds {
            errors[kind] = Counter(label: "edgelog_ingest_errors_total", dimensions: [("kind", kind)])
        }
        self.errorsCounter = errors
        self.rates = Dictionary(uniqueKeysWithValues: Source.allCases.map { ($0, RateMeter()) })
    }

    /// Records per second committed from each source over the last ten seconds.
    public func ratesPerSecond() -> [Source: Double] {
        rates.mapValues { $0.perSecond() }
    }

    /// The topic, created with the default partition count when auto-creation is on.
    public func topic(_ name: String) throws(IngestError) -> Topic {
        if let topic = manager.topic(name) { return topic }
        guard autoCreateTopics else { throw .unknownTopic(name) }
        do throws(StorageError) {
            return try manager.createTopic(name, partitions: defaultPartitions)
        } catch {
            if case .topicAlreadyExists = error, let topic = manager.topic(name) { return topic }
            if case .invalidTopicName(_, let reason) = error { throw .invalidTopic(name, reason: reason) }
            throw .storage(error)
        }
    }

    /// Appends `records` to `topicName`; `partitions[i]`, when given, pins record i.
    public func append(
        topic topicName: String, records: [Record], partitions explicit: [Int32?]? = nil, source: Source
    ) async throws(IngestError) -> [RecordPosition] {
        do {
            let result = try await appendChecked(topicName, records, explicit)
            recordsCounter[source]?.increment(by: records.count)
            rates[source]?.add(records.count)
            var bytes = 0
            for record in records { bytes += record.payloadBytes }
            bytesCounter[source]?.increment(by: bytes)
            return result
        } catch {
            errorsCounter[error.metricKind]?.increment()
            throw error
        }
    }

    private func appendChecked(_ topicName: String, _ records: [Record], _ explicit: [Int32?]?) async throws(IngestError)
        -> [RecordPosition]
    {
        guard !records.isEmpty else { return [] }
        let topic = try self.topic(topicName)
        let maxBytes = topic.config.maxBatchBytes
        var requestBytes = 0
        for (index, record) in records.enumerated() {
            let size = RecordBatchBuilder.encodedSizeBound(of: record) + RecordBatch.Layout.headerSize
            guard size <= maxBytes else { throw .recordTooLarge(index: index, bytes: size, maxBytes: maxBytes) }
            requestBytes += size
        }
        if let budget = manager.budget, budget.usedBytes + Int64(requestBytes) > budget.limitBytes,
            budget.policy == .reject
        {
            throw .storage(.diskBudgetExceeded(usedBytes: budget.usedBytes, budgetBytes: budget.limitBytes))
        }
        var assigned = topic.partitioner.partitions(for: records, partitionCount: topic.partitionCount)
        if let explicit {
            for (index, partition) in explicit.enumerated() where index < assigned.count {
                guard let partition else { continue }
                guard partition >= 0, partition < topic.partitionCount else {
                    throw .unknownPartition(topic: topicName, partition: partition, partitionCount: topic.partitionCount)
                }
                assigned[index] = partition
            }
        }
        // Each partition's records in request order, appended as one request per partition.
        var groups: [Int32: [Record]] = [:]
        for (record, partition) in zip(records, assigned) { groups[partition, default: []].append(record) }
        let bases: [Int32: Int64]
        do {
            bases = try await withThrowingTaskGroup(of: (Int32, Int64).self) { group in
                for (partition, records) in groups {
                    let log = topic.partitions[Int(partition)]
                    group.addTask { (partition, try await log.append(records).baseOffset) }
                }
                var bases: [Int32: Int64] = [:]
                for try await (partition, base) in group { bases[partition] = base }
                return bases
            }
        } catch let error as StorageError {
            throw .storage(error)
        } catch {
            throw .storage(.closed)
        }
        var next = bases
        var positions: [RecordPosition] = []
        positions.reserveCapacity(records.count)
        for partition in assigned {
            let offset = next[partition]!
            next[partition] = offset + 1
            positions.append(RecordPosition(partition: partition, offset: offset))
        }
        return positions
    }
}

extension IngestError {
    static let metricKinds = ["unknown_topic", "invalid_topic", "unknown_partition", "record_too_large", "disk_budget", "disk_full", "storage"]

    var metricKind: String {
        switch self {
        case .unknownTopic: "unknown_topic"
        case .invalidTopic: "invalid_topic"
        case .unknownPartition: "unknown_partition"
        case .recordTooLarge: "record_too_large"
        case .storage(.diskBudgetExceeded): "disk_budget"
        case .storage(.diskFull): "disk_full"
        case .storage: "storage"
        }
    }
}
