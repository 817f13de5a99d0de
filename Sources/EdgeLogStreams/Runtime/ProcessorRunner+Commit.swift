import EdgeLogStorage
import Foundation
import NIOCore

extension ProcessorRunner {
    /// Outputs bound for one partition, in the order they were emitted.
    struct OutputGroup {
        var topic: String
        var partition: Int32
        var records: [Record]
    }

    /// Where each output goes: its destination's topic, and there the partition of its key
    /// (Kafka's murmur2), or of its value when it has no key, so that a replay sends every
    /// record where the first run did.
    func group(_ outputs: [StreamOutput]) throws -> [OutputGroup] {
        var groups: [OutputGroup] = []
        var index: [String: [Int32: Int]] = [:]
        // Looked up once per commit, not once per record (a lookup takes the manager's lock).
        var topics: [String: Topic] = [:]
        for output in outputs {
            let topicName: String
            switch output.destination {
            case .output: topicName = plan.outputTopic
            case .deadLetter: topicName = plan.deadLetterTopic
            case .late:
                guard case .sideTopic(let side) = plan.latePolicy else { continue }
                topicName = side
            }
            let topic: Topic
            if let known = topics[topicName] {
                topic = known
            } else {
                topic = try ensureTopic(topicName)
                topics[topicName] = topic
            }
            let key = output.key.map { ByteBuffer(bytes: $0) }
            let value = output.value.map { ByteBuffer(bytes: $0) }
            let partition =
                topic.partitionCount == 1
                ? 0 : Murmur2.partition(for: key ?? value ?? ByteBuffer(), partitionCount: topic.partitionCount)
            let record = Record(
                timestamp: output.timestampMs, key: key, value: value,
                headers: output.headers.map { RecordHeader(key: $0.key, value: $0.value.map { ByteBuffer(bytes: $0) }) })
            if let at = index[topicName]?[partition] {
                groups[at].records.append(record)
            } else {
                index[topicName, default: [:]][partition] = groups.count
                groups.append(OutputGroup(topic: topicName, partition: partition, records: [record]))
            }
        }
        return groups
    }

    /// Makes the commit (the steps since the last one, and where each output partition ends
    /// now) durable, then appends the outputs. A crash between the two is what recovery repairs.
    func commit(_ outputs: [StreamOutput], wallClockMs: Int64) async throws {
        let groups = try group(outputs)
        var ranges: [ProcessorCommit.OutputRange] = []
        for group in groups {
            let log = try manager.partition(topic: group.topic, group.partition)
            ranges.append(.init(topic: group.topic, partition: group.partition, endBefore: log.logEndOffset, count: Int64(group.records.count)))
        }
        let commit = ProcessorCommit(steps: pendingSteps, outputs: ranges)
        let started = ContinuousClock.now
        guard let commitLog else { throw StorageError.closed }
        _ = try await commitLog.append([Record(timestamp: wallClockMs, value: commit.encoded())])
        pendingSteps = []
        try crash(.afterCommit)
        if tuning.pauseAfterCommitMs > 0 { try? await Task.sleep(for: .milliseconds(tuning.pauseAfterCommitMs)) }
        try await append(groups)
        let elapsed = ContinuousClock.now - started
        shared.withLock {
            $0.commits += 1
            $0.lastCommitMs = elapsed / .milliseconds(1)
        }
    }

    /// Commits the steps since the last commit, with no outputs.
    func commitSteps(wallClockMs: Int64) async throws {
        guard let commitLog else { throw StorageError.closed }
        let commit = ProcessorCommit(steps: pendingSteps, outputs: [])
        _ = try await commitLog.append([Record(timestamp: wallClockMs, value: commit.encoded())])
        pendingSteps = []
    }

    /// Appends every group at once (one fsync per partition, side by side) and waits for all.
    func append(_ groups: [OutputGroup]) async throws {
        let logs = try groups.map { group throws(StorageError) in try manager.partition(topic: group.topic, group.partition) }
        if tuning.crashAt != nil {
            // One after the other, so that a test can stop between two.
            for (log, group) in zip(logs, groups) {
                _ = try await log.append(group.records)
                try crash(.betweenOutputPartitions)
            }
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for (log, group) in zip(logs, groups) {
                tasks.addTask { _ = try await log.append(group.records) }
            }
            try await tasks.waitForAll()
        }
    }

    /// Recovery's half of a commit: which of `expected` the partition already holds from
    /// `range.endBefore` on, in order, and appends the others. Records are compared by
    /// timestamp, key, value and headers, skipping any record not the processor's.
    func ensure(_ range: ProcessorCommit.OutputRange, holds expected: [Record]) async throws -> Int {
        let log = try manager.partition(topic: range.topic, range.partition)
        // Deleted by retention since: it was there (it was appended before the next commit).
        guard range.endBefore >= log.logStartOffset else { return 0 }
        var present: [Record] = []
        var next = range.endBefore
        let end = log.logEndOffset
        while next < end && present.count < expected.count * 2 + 16 {
            let batch = try log.readRecords(from: next, maxRecords: expected.count + 16, compressor: compressor)
            guard let last = batch.last else { break }
            present.append(contentsOf: batch)
            next = last.offset + 1
        }
        var missing: [Record] = []
        var cursor = 0
        for record in expected {
            var found = false
            while cursor < present.count {
                defer { cursor += 1 }
                if Self.sameOutput(present[cursor], record) {
                    found = true
                    break
                }
            }
            if !found { missing.append(record) }
        }
        if !missing.isEmpty { _ = try await log.append(missing) }
        return missing.count
    }

    static func sameOutput(_ a: Record, _ b: Record) -> Bool {
        a.timestamp == b.timestamp && a.key == b.key && a.value == b.value && a.headers == b.headers
    }
}
