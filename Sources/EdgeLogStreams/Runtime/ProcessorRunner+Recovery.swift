import EdgeLogStorage
import Foundation
import NIOCore

extension ProcessorRunner {
    var snapshotPath: String { directory + "/snapshot" }
    var previousSnapshotPath: String { directory + "/snapshot.previous" }

    /// Comes back to where the last commit left the processor: the newest snapshot that reads
    /// (the previous one if the newest is damaged), then every commit after it replayed, with
    /// whatever part of their outputs is missing from the log appended. Ends with a snapshot,
    /// so a crash during the next steps replays nothing twice.
    func recover() async throws {
        setPhase(.recovering, error: nil)
        let started = ContinuousClock.now
        try FileSystem.createDirectory(manager.configuration.dataDirectory + "/.streams")
        try FileSystem.createDirectory(directory)
        let commitLog = try openCommitLog()
        self.commitLog = commitLog
        processor = StreamProcessor(plan: plan)
        pendingSteps = []
        pausedInputs = []
        inputs = []
        positions = [:]
        lastInputMs = [:]
        lastIdleMarkMs = [:]
        for topicName in plan.inputs {
            guard let topic = manager.topic(topicName) else { throw StorageError.unknownTopic(topicName) }
            for log in topic.partitions {
                let input = StreamProcessor.InputPartition(topic: topicName, partition: log.partition)
                inputs.append(input)
                processor.registerInput(topic: topicName, partition: log.partition)
                positions[input] = log.logStartOffset
            }
        }
        inputs.sort()

        var replayFrom: Int64 = 0
        if let snapshot = loadSnapshot(commitLog: commitLog) {
            replayFrom = snapshot.nextCommitOffset
            for position in snapshot.positions {
                positions[.init(topic: position.topic, partition: position.partition)] = position.nextOffset
            }
        } else if commitLog.logStartOffset > 0 {
            throw ProcessorRecoveryError(
                "no readable snapshot and the commit topic no longer starts at 0: the state cannot be rebuilt; drop and re-create the processor")
        }
        var replayed: Int64 = 0
        var restored: Int64 = 0
        var offset = replayFrom
        while offset < commitLog.logEndOffset {
            let records = try commitLog.readRecords(from: offset, maxRecords: 256, compressor: compressor)
            guard let last = records.last else { break }
            for record in records {
                guard let value = record.value else { continue }
                let commit = try ProcessorCommit(decoding: value)
                restored += try await replay(commit)
                replayed += 1
            }
            offset = last.offset + 1
        }
        let now = wallClock()
        for input in inputs { lastInputMs[input] = now }
        try await writeSnapshot()
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed / .milliseconds(1)
        shared.withLock {
            $0.replayedCommits = replayed
            $0.restoredOutputs = restored
            $0.recoveryMs = milliseconds
        }
        logger.info(
            "processor recovered",
            metadata: [
                "edgelog.commits_replayed": "\(replayed)", "edgelog.outputs_restored": "\(restored)",
                "edgelog.keys": "\(processor.metrics.keys)", "edgelog.ms": "\(Int(milliseconds))",
            ])
        publish()
    }

    /// The commit topic, made on first use: one partition, fsynced on every append, kept by
    /// size (only the commits since the last snapshot are ever read), never replicated.
    func openCommitLog() throws -> PartitionLog {
        let name = Self.commitTopic(for: self.name)
        if let topic = manager.topic(name) { return try topic.partition(0) }
        var config = manager.configuration.defaults
        config.flush = .always
        config.segmentBytes = 1 << 20
        config.retentionMs = nil
        config.retentionBytes = 8 << 20
        return try manager.createTopic(name, partitions: 1, config: config).partition(0)
    }

    /// The newest snapshot that reads, belongs to this query and whose commits are still in
    /// the commit topic; its state restored into `processor`.
    func loadSnapshot(commitLog: PartitionLog) -> ProcessorSnapshot? {
        for path in [snapshotPath, previousSnapshotPath] {
            let snapshot: ProcessorSnapshot
            do {
                guard let read = try ProcessorSnapshot.read(from: path) else { continue }
                snapshot = read
            } catch {
                logger.error("a processor snapshot does not read; trying the one before", metadata: ["edgelog.path": "\(path)", "edgelog.error": "\(error)"])
                continue
            }
            guard snapshot.nextCommitOffset >= commitLog.logStartOffset else {
                logger.error("a processor snapshot is older than its commit topic; trying the one before", metadata: ["edgelog.path": "\(path)"])
                continue
            }
            guard snapshot.query == plan.query else {
                // A changed query cannot use the old state: it starts empty where the old one was.
                logger.notice("the processor's query changed: its state starts empty, reading on from the old query's positions")
                return ProcessorSnapshot(
                    query: plan.query, nextCommitOffset: commitLog.logEndOffset, positions: snapshot.positions, state: ByteBuffer())
            }
            do {
                try processor.restoreState(from: snapshot.state)
                return snapshot
            } catch {
                logger.error("a processor snapshot's state does not decode; trying the one before", metadata: ["edgelog.path": "\(path)", "edgelog.error": "\(error)"])
                processor = StreamProcessor(plan: plan)
                for input in inputs { processor.registerInput(topic: input.topic, partition: input.partition) }
            }
        }
        return nil
    }

    /// Runs one commit's steps again and makes sure its outputs are in the log. Returns how
    /// many outputs had to be appended.
    func replay(_ commit: ProcessorCommit) async throws -> Int64 {
        var outputs: [StreamOutput] = []
        for step in commit.steps {
            switch step {
            case .records(let topic, let partition, let from, let to, let wallClockMs):
                let input = StreamProcessor.InputPartition(topic: topic, partition: partition)
                let log = try manager.partition(topic: topic, partition)
                var next = from
                if next < log.logStartOffset {
                    shared.withLock { $0.skippedInputRecords += log.logStartOffset - next }
                    next = log.logStartOffset
                }
                while next < to {
                    let records = try log.readRecords(
                        from: next, maxRecords: min(tuning.cycleRecords, Int(to - next)), maxBytes: tuning.cycleBytes, compressor: compressor)
                    guard let last = records.last else { break }
                    for record in records where record.offset < to {
                        if processor.process(Self.streamRecord(record, input), wallClockMs: wallClockMs, into: &outputs) == .paused {
                            shared.withLock { $0.replayMismatches += 1 }
                        }
                    }
                    next = last.offset + 1
                }
                positions[input] = to
            case .idle(let topic, let partition, let wallClockMs):
                processor.markIdle(topic: topic, partition: partition, wallClockMs: wallClockMs, into: &outputs)
            }
        }
        var restored: Int64 = 0
        let groups = try group(outputs)
        for range in commit.outputs {
            guard let group = groups.first(where: { $0.topic == range.topic && $0.partition == range.partition }) else {
                shared.withLock { $0.replayMismatches += 1 }
                continue
            }
            if Int64(group.records.count) != range.count { shared.withLock { $0.replayMismatches += 1 } }
            restored += Int64(try await ensure(range, holds: group.records))
        }
        if groups.count != commit.outputs.count { shared.withLock { $0.replayMismatches += 1 } }
        return restored
    }

    /// Saves the whole state with where the processor stands; the previous snapshot is kept
    /// beside it, in case this one is found damaged. Steps not yet committed are committed
    /// first (with no outputs), so that the commit topic holds every step: replaying from the
    /// previous snapshot, or from nothing, comes to the same state.
    func writeSnapshot() async throws {
        guard let commitLog else { return }
        if !pendingSteps.isEmpty { try await commitSteps(wallClockMs: wallClock()) }
        let positions = inputs.map { ProcessorSnapshot.Position(topic: $0.topic, partition: $0.partition, nextOffset: self.positions[$0] ?? 0) }
        let snapshot = ProcessorSnapshot(
            query: plan.query, nextCommitOffset: commitLog.logEndOffset, positions: positions, state: processor.encodeState())
        let bytes = snapshot.encoded()
        if FileSystem.exists(snapshotPath) { try FileSystem.rename(snapshotPath, to: previousSnapshotPath) }
        try crash(.midSnapshot)
        try FileSystem.writeAtomically(bytes, to: snapshotPath)
        pendingSteps = []
        recordsSinceSnapshot = 0
        // When to snapshot is not part of the output, so it follows real time, not the
        // (possibly virtual) wall clock the processor is given.
        lastSnapshotAt = .now
        shared.withLock {
            $0.snapshots += 1
            $0.lastSnapshotBytes = bytes.readableBytes
        }
    }

    /// A snapshot when enough has happened since the last one (see `Tuning`).
    func maybeSnapshot(force: Bool) async throws {
        let elapsed = Int64((ContinuousClock.now - lastSnapshotAt) / .milliseconds(1))
        let due =
            force
            ? !pendingSteps.isEmpty || recordsSinceSnapshot > 0
            : (recordsSinceSnapshot >= tuning.snapshotRecords && elapsed >= 1_000)
                || (recordsSinceSnapshot > 0 && elapsed >= tuning.snapshotIntervalMs)
                || (!pendingSteps.isEmpty && elapsed >= 6 * tuning.snapshotIntervalMs)
        if due { try await writeSnapshot() }
    }
}

public struct ProcessorRecoveryError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
