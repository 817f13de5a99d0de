import EdgeLogStorage
import NIOCore

extension ProcessorRunner {
    /// One pass over the inputs: at most `cycleRecords` from each partition, in partition
    /// order, each processed at this cycle's wall clock; idle partitions let their watermark
    /// follow the clock. What that emits is committed and appended before the cycle returns.
    /// True when anything happened.
    func cycle() async throws -> Bool {
        let now = wallClock()
        var outputs: [StreamOutput] = []
        var happened = false
        for input in inputs {
            let log = try manager.partition(topic: input.topic, input.partition)
            var from = positions[input] ?? log.logStartOffset
            let start = log.logStartOffset
            if from < start {
                // Retention deleted input this processor had not read: counted, never silent.
                let skipped = start - from
                logger.error(
                    "input deleted before the processor read it",
                    metadata: ["edgelog.topic": "\(input.topic)-\(input.partition)", "edgelog.records": "\(skipped)"])
                shared.withLock { $0.skippedInputRecords += skipped }
                from = start
                positions[input] = start
            }
            let records = try log.readRecords(from: from, maxRecords: tuning.cycleRecords, maxBytes: tuning.cycleBytes, compressor: compressor)
            var next = from
            var paused = false
            for record in records {
                if processor.process(Self.streamRecord(record, input), wallClockMs: now, into: &outputs) == .paused {
                    paused = true
                    break
                }
                next = record.offset + 1
            }
            if paused { pausedInputs.insert(input) } else { pausedInputs.remove(input) }
            if next > from {
                pendingSteps.append(.records(topic: input.topic, partition: input.partition, from: from, to: next, wallClockMs: now))
                positions[input] = next
                lastInputMs[input] = now
                recordsSinceSnapshot += next - from
                happened = true
            }
            if (records.isEmpty || paused) && markIdleIfDue(input, now: now, into: &outputs) { happened = true }
        }
        if !outputs.isEmpty {
            try await commit(outputs, wallClockMs: now)
        } else if pendingSteps.count >= Self.maxPendingSteps {
            // Steps alone, so that no commit record outgrows a batch.
            try await commitSteps(wallClockMs: now)
        }
        return happened
    }

    /// A partition read to its end (or paused at the state bound) with nothing new for the
    /// query's IDLE_TIMEOUT: its watermark follows the wall clock, noted at most twice per
    /// timeout (and at most once a second).
    func markIdleIfDue(_ input: StreamProcessor.InputPartition, now: Int64, into outputs: inout [StreamOutput]) -> Bool {
        let quietSince = lastInputMs[input] ?? now
        guard now - quietSince >= plan.idleTimeoutMs else { return false }
        let spacing = min(1_000, max(1, plan.idleTimeoutMs / 2))
        if let last = lastIdleMarkMs[input], now - last < spacing { return false }
        lastIdleMarkMs[input] = now
        processor.markIdle(topic: input.topic, partition: input.partition, wallClockMs: now, into: &outputs)
        pendingSteps.append(.idle(topic: input.topic, partition: input.partition, wallClockMs: now))
        return true
    }

    /// Waits until some input has a record past its position, or the poll time (shorter when an
    /// idle mark is due).
    func waitForInput() async {
        var waits: [(log: PartitionLog, offset: Int64)] = []
        for input in inputs where !pausedInputs.contains(input) {
            guard let log = try? manager.partition(topic: input.topic, input.partition) else { continue }
            waits.append((log, positions[input] ?? log.logEndOffset))
        }
        var timeout = tuning.pollMs
        if plan.idleTimeoutMs < timeout { timeout = max(10, plan.idleTimeoutMs / 2) }
        await PartitionLog.waitForAny(waits, timeout: .milliseconds(timeout))
    }

    /// Steps held before they are committed without outputs: about 60 bytes each, so a commit
    /// record stays far below a batch's limit.
    static let maxPendingSteps = 4096

    static func streamRecord(_ record: Record, _ input: StreamProcessor.InputPartition) -> StreamRecord {
        StreamRecord(
            topic: input.topic, partition: input.partition, offset: record.offset, timestampMs: record.timestamp,
            key: record.key.map { Array($0.readableBytesView) }, value: record.value.map { Array($0.readableBytesView) },
            headers: record.headers.map { .init(key: $0.key, value: $0.value.map { Array($0.readableBytesView) }) })
    }
}
