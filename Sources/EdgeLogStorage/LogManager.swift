public import Foundation
public import Logging
import Synchronization

/// All topics of a data directory: opens and recovers them, creates and deletes topics,
/// enforces retention and the disk budget, and closes everything cleanly.
///
/// Layout of the data directory:
///
///     <data>/<topic>-<partition>/   one directory per partition (see PartitionLog)
///     <data>/.topics/<topic>.json   partition count and settings of each topic
///     <data>/.topics/<topic>.id     its topic id (KIP-516)
public final class LogManager: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: String
        /// Settings of topics created without their own.
        public var defaults = LogConfig()
        /// Bytes the whole data directory may use; nil: no budget.
        public var diskBudgetBytes: Int64? = nil
        public var overflowPolicy: OverflowPolicy = .reject
        public var nullKeyStrategy: Partitioner.NullKeyStrategy = .sticky
        /// How often the background thread applies retention; nil: only when `applyRetention` is called.
        public var retentionCheckIntervalMs: Int64? = 60_000

        public init(dataDirectory: String) {
            self.dataDirectory = dataDirectory
        }
    }

    public let configuration: Configuration
    public let budget: DiskBudget?
    let logger: Logger
    private let topicsByName: Mutex<[String: Topic]>
    private let retentionThread: RetentionThread?

    static let topicsDirectory = ".topics"
    /// Partition directories of deleted topics, renamed here before they are removed.
    static let trashDirectory = ".deleting"

    /// Removes a deleted partition's directory, trying again when a late writer has just put
    /// a file into it; what still resists is left for the next open (and logged).
    static func removeTrash(_ directory: String, logger: Logger) {
        for attempt in 1...3 {
            do throws(StorageError) {
                try FileSystem.removeDirectory(directory)
                return
            } catch {
                if attempt == 3 {
                    logger.warning("deleted data not removed yet; retried at the next start", metadata: ["edgelog.path": "\(directory)", "edgelog.error": "\(error)"])
                }
            }
        }
    }

    private init(configuration: Configuration, budget: DiskBudget?, logger: Logger, topics: [String: Topic]) {
        self.configuration = configuration
        self.budget = budget
        self.logger = logger
        self.topicsByName = Mutex(topics)
        self.retentionThread = configuration.retentionCheckIntervalMs.map { RetentionThread(intervalMs: $0) }
    }

    /// Opens the data directory, recovering every partition. Returns the reports of partitions
    /// whose recovery found something worth telling.
    public static func open(
        _ configuration: Configuration, logger: Logger
    ) throws(StorageError) -> (LogManager, [RecoveryReport]) {
        let root = configuration.dataDirectory
        try FileSystem.createDirectory(root)
        try FileSystem.createDirectory(root + "/" + topicsDirectory)
        if FileSystem.isDirectory(root + "/" + trashDirectory) {
            for entry in try FileSystem.list(root + "/" + trashDirectory) {
                removeTrash(root + "/" + trashDirectory + "/" + entry, logger: logger)
            }
        }
        let budget = configuration.diskBudgetBytes.map {
            DiskBudget(limitBytes: $0, policy: configuration.overflowPolicy)
        }
        var reports: [RecoveryReport] = []
        var topics: [String: Topic] = [:]
        for (name, metadata) in try discoverTopics(in: root, defaults: configuration.defaults, logger: logger) {
            var partitions: [PartitionLog] = []
            for index in 0..<metadata.partitions {
                let (log, report) = try PartitionLog.open(
                    topic: name, partition: index, directory: root + "/\(name)-\(index)", config: metadata.config,
                    budget: budget, logger: logger)
                partitions.append(log)
                reports.append(report)
            }
            topics[name] = Topic(
                name: name, id: try topicId(name, in: root, logger: logger), config: metadata.config, partitions: partitions,
                partitioner: Partitioner(nullKeyStrategy: configuration.nullKeyStrategy))
        }
        budget?.reset(toUsedBytes: FileSystem.usedBytes(under: root))
        let manager = LogManager(configuration: configuration, budget: budget, logger: logger, topics: topics)
        budget?.setReclaimer { [weak manager] bytes in manager?.dropOldest(atLeast: bytes) ?? 0 }
        manager.retentionThread?.start(manager)
        return (manager, reports)
    }

    /// The topic's id from `<topics>/<name>.id`, made and written there when missing (a data
    /// directory from before topic ids, or a copied one).
    private static func topicId(_ name: String, in root: String, logger: Logger) throws(StorageError) -> UUID {
        let path = root + "/" + topicsDirectory + "/\(name).id"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            if let id = UUID(uuidString: text.trimmingCharacters(in: .whitespacesAndNewlines)) { return id }
            logger.warning("unreadable topic id; the topic gets a new one", metadata: ["edgelog.path": "\(path)"])
        }
        return try writeTopicId(UUID(), for: name, in: root)
    }

    @discardableResult
    private static func writeTopicId(_ id: UUID, for name: String, in root: String) throws(StorageError) -> UUID {
        try FileSystem.writeAtomically(.init(string: id.uuidString.lowercased() + "\n"), to: root + "/" + topicsDirectory + "/\(name).id")
        return id
    }

    /// The topic with this id, if there is one.
    public func topic(id: UUID) -> Topic? { topicsByName.withLock { $0.values.first { $0.id == id } } }

    struct TopicMetadata: Codable {
        var partitions: Int32
        var config: LogConfig
    }

    /// Topics from their metadata files, plus partition directories without one (a copied data
    /// directory), which open with the default settings.
    private static func discoverTopics(
        in root: String, defaults: LogConfig, logger: Logger
    ) throws(StorageError) -> [String: TopicMetadata] {
        var found: [String: TopicMetadata] = [:]
        for file in try FileSystem.list(root + "/" + topicsDirectory) where file.hasSuffix(".json") {
            let name = String(file.dropLast(5))
            let path = root + "/" + topicsDirectory + "/" + file
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                found[name] = try JSONDecoder().decode(TopicMetadata.self, from: data)
            } catch {
                logger.info("unreadable topic file; using default settings", metadata: ["edgelog.path": "\(path)", "edgelog.error": "\(error)"])
            }
        }
        for entry in try FileSystem.list(root) where FileSystem.isDirectory(root + "/" + entry) {
            guard let dash = entry.lastIndex(of: "-"), let index = Int32(entry[entry.index(after: dash)...]) else { continue }
            let name = String(entry[..<dash])
            guard (try? Topic.validate(name: name)) != nil else { continue }
            var metadata = found[name] ?? TopicMetadata(partitions: 0, config: defaults)
            metadata.partitions = max(metadata.partitions, index + 1)
            found[name] = metadata
        }
        return found
    }

    // MARK: Topics

    public var topicNames: [String] { topicsByName.withLock { $0.keys.sorted() } }

    public func topic(_ name: String) -> Topic? { topicsByName.withLock { $0[name] } }

    public func partition(topic name: String, _ index: Int32) throws(StorageError) -> PartitionLog {
        guard let topic = topic(name) else { throw .unknownTopic(name) }
        return try topic.partition(index)
    }

    /// Creates a topic with `partitions` partitions; its settings are stored beside the data.
    @discardableResult
    public func createTopic(_ name: String, partitions: Int32, config: LogConfig? = nil) throws(StorageError) -> Topic {
        try Topic.validate(name: name)
        guard partitions > 0, partitions <= 10_000 else {
            throw .invalidTopicName(name, reason: "partition count \(partitions) is not in 1...10000")
        }
        let config = config ?? configuration.defaults
        if topic(name) != nil { throw .topicAlreadyExists(name) }
        let root = configuration.dataDirectory
        let metadata = TopicMetadata(partitions: partitions, config: config)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(metadata) } catch {
            throw .corruptCheckpoint(path: name, reason: "cannot encode topic settings: \(error)")
        }
        try FileSystem.writeAtomically(.init(bytes: data), to: root + "/" + Self.topicsDirectory + "/\(name).json")
        let id = try Self.writeTopicId(UUID(), for: name, in: root)
        var logs: [PartitionLog] = []
        for index in 0..<partitions {
            let (log, _) = try PartitionLog.open(
                topic: name, partition: index, directory: root + "/\(name)-\(index)", config: config,
                budget: budget, logger: logger)
            logs.append(log)
        }
        try FileSystem.syncDirectory(root)
        if let observer = deletionObserver.withLock({ $0 }) {
            for log in logs { log.deletionObserver = observer }
        }
        let topic = Topic(
            name: name, id: id, config: config, partitions: logs, partitioner: Partitioner(nullKeyStrategy: configuration.nullKeyStrategy))
        let winner: Topic? = topicsByName.withLock { topics in
            if topics[name] != nil { return nil }
            topics[name] = topic
            return topic
        }
        guard let winner else {
            for log in logs { log.close() }
            throw .topicAlreadyExists(name)
        }
        logger.info("created topic", metadata: ["edgelog.topic": "\(name)", "edgelog.partitions": "\(partitions)"])
        return winner
    }

    /// Closes and deletes a topic with all its data.
    ///
    /// Each partition directory is first renamed into `<data>/.deleting/`, so that a writer
    /// still holding its path (a replicator saving its checkpoint a moment after the close)
    /// finds no directory instead of putting a file into one being emptied, which made the
    /// removal fail with ENOTEMPTY. The settings go next, then the trash; a crash in between
    /// leaves at worst an empty topic (a second delete removes it) and a trash that the
    /// next open empties.
    public func deleteTopic(_ name: String) throws(StorageError) {
        guard let topic = topicsByName.withLock({ $0.removeValue(forKey: name) }) else { throw .unknownTopic(name) }
        let root = configuration.dataDirectory
        let trash = root + "/" + Self.trashDirectory
        try FileSystem.createDirectory(trash)
        var moved: [String] = []
        for log in topic.partitions {
            log.close()
            let bytes = log.sizeBytes
            let target = trash + "/\(name)-\(log.partition)-\(UUID().uuidString.lowercased())"
            do throws(StorageError) {
                try FileSystem.rename(log.directory, to: target)
                moved.append(target)
            } catch {
                // Nothing there to move (a partition never written); anything else is real.
                guard FileSystem.isDirectory(log.directory) else { continue }
                throw error
            }
            budget?.release(bytes)
        }
        try FileSystem.syncDirectory(root)
        try FileSystem.remove(root + "/" + Self.topicsDirectory + "/\(name).json")
        try FileSystem.remove(root + "/" + Self.topicsDirectory + "/\(name).id")
        try FileSystem.syncDirectory(root)
        for directory in moved { Self.removeTrash(directory, logger: logger) }
        logger.info("deleted topic", metadata: ["edgelog.topic": "\(name)"])
    }

    // MARK: Retention and the disk budget

    /// Tries to recover every partition fenced after a failed write or fsync (see
    /// `PartitionLog.recoverFromFence`); returns the reports of those that accept appends again.
    /// Those whose disk still fails stay fenced and are tried again at the next call.
    public func recoverFencedPartitions() -> [RecoveryReport] {
        var reports: [RecoveryReport] = []
        for topic in topicsByName.withLock({ Array($0.values) }) {
            for partition in topic.partitions where partition.fenceReason != nil {
                do {
                    if let report = try partition.recoverFromFence() { reports.append(report) }
                } catch {
                    logger.debug("fenced partition not recovered yet", metadata: ["edgelog.partition": "\(partition.name)", "edgelog.error": "\(error)"])
                }
            }
        }
        return reports
    }

    private let deletionObserver = Mutex<(@Sendable (DeletedRecords) -> Void)?>(nil)

    /// Tells `observer` of every deletion that loses data (`DeletedRecords`), in every
    /// partition, present and future. It is called on the deleting thread (an appender making
    /// room, or the retention thread), so it must not append itself: queue and return.
    public func observeDeletions(_ observer: @escaping @Sendable (DeletedRecords) -> Void) {
        deletionObserver.withLock { $0 = observer }
        for topic in topicsByName.withLock({ Array($0.values) }) {
            for partition in topic.partitions { partition.deletionObserver = observer }
        }
    }

    /// Applies retention by age and size to every partition; returns the bytes freed.
    @discardableResult
    public func applyRetention(nowMs: Int64 = wallClockMs()) -> Int64 {
        let topics = topicsByName.withLock { Array($0.values) }
        var freed: Int64 = 0
        for topic in topics {
            for partition in topic.partitions { freed += partition.applyRetention(nowMs: nowMs) }
        }
        budget?.reset(toUsedBytes: FileSystem.usedBytes(under: configuration.dataDirectory))
        return freed
    }

    /// Drop-oldest: deletes the globally oldest deletable segments until `bytes` are freed or
    /// nothing more may go (active segments and retention floors stop it).
    func dropOldest(atLeast bytes: Int64) -> Int64 {
        var freed: Int64 = 0
        while freed < bytes {
            let partitions = topicsByName.withLock { $0.values.flatMap(\.partitions) }
            let candidates = partitions.filter { $0.segments.count > 1 }
                .sorted { ($0.segments.first?.retentionTimestampMs ?? 0) < ($1.segments.first?.retentionTimestampMs ?? 0) }
            var progressed = false
            for partition in candidates {
                let released = partition.deleteOldestSegment()
                if released > 0 || partition.segments.count < 2 {
                    freed += released
                    progressed = released > 0
                    if progressed { break }
                }
            }
            if !progressed { break }
        }
        if freed > 0 {
            logger.info("disk budget: dropped oldest segments", metadata: ["edgelog.bytes": "\(freed)"])
        }
        return freed
    }

    /// Closes every partition cleanly (drain, flush, recovery point) and stops the retention
    /// thread.
    public func close() {
        retentionThread?.stop()
        let topics = topicsByName.withLock { Array($0.values) }
        for topic in topics {
            for partition in topic.partitions { partition.close() }
        }
    }
}

/// Applies retention at an interval until stopped.
private final class RetentionThread: @unchecked Sendable {
    private let condition = BlockingCondition()
    private var stopping = false
    private var stopped = false
    private let intervalNanos: UInt64

    init(intervalMs: Int64) {
        intervalNanos = UInt64(max(100, intervalMs)) * 1_000_000
    }

    func start(_ manager: LogManager) {
        let thread = Thread { [weak manager] in
            while true {
                let shouldStop: Bool = self.condition.withLock {
                    let deadline = monotonicNanos() + self.intervalNanos
                    while !self.stopping && monotonicNanos() < deadline { self.condition.wait(untilNanos: deadline) }
                    return self.stopping
                }
                if shouldStop { break }
                manager?.applyRetention()
            }
            self.condition.withLock {
                self.stopped = true
                self.condition.broadcast()
            }
        }
        thread.name = "edgelog-retention"
        thread.start()
    }

    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
            while !stopped { condition.wait() }
        }
    }
}
