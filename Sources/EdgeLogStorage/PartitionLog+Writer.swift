import NIOCore

/// The partition's writer thread: the only code that writes its files.
extension PartitionLog {
    /// State the writer keeps across groups, reused so a steady stream allocates nothing per
    /// record.
    private struct WriterScratch {
        var builder: RecordBatchBuilder
        var builderBaseOffset: Int64 = 0
        var output = ByteBuffer()
        var written: [LogSegment.WrittenBatch] = []
        var results: [AppendResult] = []
        var group: [Appender.Pending] = []
    }

    func runWriter() {
        var scratch = WriterScratch(builder: RecordBatchBuilder(codec: config.codec, compressionLevel: config.compressionLevel))
        var lastFlushNanos = monotonicNanos()
        var lastCheckpointNanos = lastFlushNanos
        var dirty = false
        let flushIntervalNanos: UInt64? = {
            if case .interval(let milliseconds) = config.flush { return UInt64(max(1, milliseconds)) * 1_000_000 }
            return nil
        }()
        let lingerNanos = UInt64(max(0, config.lingerMicroseconds)) * 1000
        let checkpointNanos = UInt64(max(1, config.checkpointIntervalMs)) * 1_000_000

        while true {
            appender.condition.lock()
            while appender.queue.isEmpty && !appender.closing {
                if dirty, let flushIntervalNanos {
                    let deadline = lastFlushNanos + flushIntervalNanos
                    if monotonicNanos() >= deadline { break }
                    appender.condition.wait(untilNanos: deadline)
                } else {
                    appender.condition.wait()
                }
            }
            if appender.queue.isEmpty && appender.closing {
                appender.condition.unlock()
                break
            }
            if lingerNanos > 0, !appender.queue.isEmpty, !appender.closing {
                let deadline = appender.queue[0].enqueuedNanos + lingerNanos
                while appender.queuedBytes < config.maxBatchBytes, !appender.closing, monotonicNanos() < deadline {
                    appender.condition.wait(untilNanos: deadline)
                }
            }
            // Take a group of up to maxBatchBytes (at least one request).
            var taken = 0
            var takenBytes = 0
            for pending in appender.queue {
                if taken > 0 && takenBytes + pending.bytes > config.maxBatchBytes { break }
                taken += 1
                takenBytes += pending.bytes
            }
            scratch.group.removeAll(keepingCapacity: true)
            scratch.group.append(contentsOf: appender.queue[0..<taken])
            appender.queue.removeFirst(taken)
            appender.queuedBytes -= takenBytes
            appender.condition.unlock()

            if !scratch.group.isEmpty {
                if writeGroup(&scratch) { dirty = true }
                // Drop the records and completions now rather than when the next group comes.
                scratch.group.removeAll(keepingCapacity: true)
            }
            let now = monotonicNanos()
            if dirty, let flushIntervalNanos, now - lastFlushNanos >= flushIntervalNanos {
                flushActiveSegment()
                dirty = false
                lastFlushNanos = now
            }
            if now - lastCheckpointNanos >= checkpointNanos {
                writeRecoveryPoint()
                lastCheckpointNanos = now
            }
        }
        finishOnClose()
        appender.condition.withLock {
            appender.exited = true
            appender.condition.broadcast()
        }
    }

    /// Encodes, writes and commits one group; completes every request in it. Returns whether
    /// bytes were written that an interval flush still has to sync.
    private func writeGroup(_ scratch: inout WriterScratch) -> Bool {
        if let reason = fenceReason {
            fail(scratch.group, with: .partitionFenced(partition: name, reason: reason))
            return false
        }
        let (active, startOffset) = state.withLock { ($0.segments.last!, $0.committedOffset) }
        var nextOffset = startOffset
        scratch.output.clear()
        scratch.written.removeAll(keepingCapacity: true)
        scratch.results.removeAll(keepingCapacity: true)
        scratch.builder.reset()
        do {
            for pending in scratch.group {
                let base = nextOffset
                switch pending.payload {
                case .records(let records):
                    for record in records {
                        if scratch.builder.recordCount == 0 { scratch.builderBaseOffset = nextOffset }
                        if !scratch.builder.append(record, ifBatchStaysUnder: config.maxBatchBytes) {
                            try finishBatch(&scratch)
                            scratch.builderBaseOffset = nextOffset
                            scratch.builder.append(record)
                        }
                        nextOffset += 1
                    }
                case .batches(var batches):
                    try finishBatch(&scratch)
                    while let size = RecordBatch.frameSize(in: batches, at: batches.readerIndex),
                        let slice = batches.readSlice(length: size)
                    {
                        var batch = try RecordBatch(validating: slice)
                        batch.setBaseOffset(nextOffset)
                        let position = scratch.output.writerIndex
                        scratch.output.writeImmutableBuffer(batch.buffer)
                        scratch.written.append(
                            .init(
                                baseOffset: nextOffset, lastOffset: batch.lastOffset, maxTimestamp: batch.maxTimestamp,
                                relativePosition: position, size: size))
                        nextOffset = batch.nextOffset
                    }
                }
                scratch.results.append(AppendResult(baseOffset: base, lastOffset: nextOffset - 1))
            }
            try finishBatch(&scratch)
        } catch {
            scratch.builder.reset()
            fail(scratch.group, with: error)
            return false
        }

        let bytes = Int64(scratch.output.readableBytes)
        do {
            try budget?.reserve(bytes)
        } catch {
            fail(scratch.group, with: error)
            return false
        }
        var segment = active
        do {
            segment = try rollIfNeeded(active, incomingBytes: bytes, nextOffset: startOffset)
            try segment.append(scratch.output, batches: scratch.written)
        } catch {
            budget?.release(bytes)
            if case .diskFull = error {
                // The segment cut its file back: nothing of this group is in the log.
                fail(scratch.group, with: error)
            } else {
                fence(because: "\(error)")
                fail(scratch.group, with: .partitionFenced(partition: name, reason: "\(error)"))
            }
            return false
        }
        StorageMetrics.groupBytes.record(bytes)
        StorageMetrics.groupRecords.record(nextOffset - startOffset)
        StorageMetrics.appendedBytes.increment(by: Int(bytes))
        if config.flush == .always {
            do {
                let started = monotonicNanos()
                try segment.sync()
                StorageMetrics.fsyncDuration.recordNanoseconds(Int64(monotonicNanos() - started))
            } catch {
                // After a failed fsync the page cache may have dropped the dirty pages: what is
                // on disk is unknown, so nothing more is acknowledged until a restart recovers.
                fence(because: "\(error)")
                fail(scratch.group, with: .partitionFenced(partition: name, reason: "\(error)"))
                return false
            }
        }
        let endPosition = segment.sizeBytes
        state.withLock {
            $0.committedOffset = nextOffset
            $0.committedPosition = endPosition
            if config.flush == .always {
                $0.recoveryPoint = RecoveryPoint(offset: nextOffset, segment: segment, position: endPosition)
            }
        }
        commits.notifyAll()
        for (pending, result) in zip(scratch.group, scratch.results) {
            pending.completion(.success(result))
        }
        return config.flush != .always
    }

    private func finishBatch(_ scratch: inout WriterScratch) throws(StorageError) {
        guard scratch.builder.recordCount > 0 else { return }
        let position = scratch.output.writerIndex
        let base = scratch.builderBaseOffset
        let size = try scratch.builder.finish(baseOffset: base, into: &scratch.output)
        scratch.written.append(
            .init(
                baseOffset: base, lastOffset: base + Int64(scratch.builder.recordCount) - 1,
                maxTimestamp: scratch.builder.maxTimestamp, relativePosition: position, size: size))
        scratch.builder.reset()
    }

    private func fail(_ group: [Appender.Pending], with error: StorageError) {
        for pending in group { pending.completion(.failure(error)) }
    }

    func fence(because reason: String) {
        logger.info("partition refuses further appends", metadata: ["edgelog.reason": "\(reason)"])
        let first = state.withLock { state in
            defer { if state.fenceReason == nil { state.fenceReason = reason } }
            return state.fenceReason == nil
        }
        if first { StorageMetrics.fencedPartitions.increment() }
    }

    /// Starts a new segment when the active one is full, too old, or would overflow the 32-bit
    /// relative offsets of its index.
    private func rollIfNeeded(_ active: LogSegment, incomingBytes: Int64, nextOffset: Int64) throws(StorageError) -> LogSegment {
        let size = active.sizeBytes
        guard size > 0 else { return active }
        let full = size + incomingBytes > config.segmentBytes
        let old = wallClockMs() - active.rollTimestampMs > config.segmentMs
        let offsetsExhausted = nextOffset - active.baseOffset > Int64(Int32.max)
        guard full || old || offsetsExhausted else { return active }
        try active.finishWrites()
        let segment = try LogSegment(
            directory: directory, baseOffset: nextOffset, indexIntervalBytes: config.indexIntervalBytes, nowMs: wallClockMs())
        try FileSystem.syncDirectory(directory)
        state.withLock {
            $0.segments.append(segment)
            $0.committedPosition = 0
            $0.recoveryPoint = RecoveryPoint(offset: nextOffset, segment: segment, position: 0)
        }
        logger.debug("rolled segment", metadata: ["edgelog.base_offset": "\(nextOffset)"])
        return segment
    }

    /// The interval policy's periodic fsync.
    private func flushActiveSegment() {
        let (segment, offset, position) = state.withLock { ($0.segments.last!, $0.committedOffset, $0.committedPosition) }
        do {
            let started = monotonicNanos()
            try segment.sync()
            StorageMetrics.fsyncDuration.recordNanoseconds(Int64(monotonicNanos() - started))
            state.withLock {
                $0.recoveryPoint = RecoveryPoint(offset: offset, segment: segment, position: position)
            }
        } catch {
            fence(because: "\(error)")
        }
    }

    func writeRecoveryPoint() {
        let point = state.withLock { $0.recoveryPoint }
        do {
            try point.checkpoint.write(to: directory + "/" + Self.recoveryPointFile)
        } catch {
            logger.info("could not write the recovery point: \(error)")
        }
    }

    /// Clean shutdown: seal the active segment and record that everything is recovered.
    private func finishOnClose() {
        guard fenceReason == nil else { return }
        let (segment, offset, position) = state.withLock { ($0.segments.last!, $0.committedOffset, $0.committedPosition) }
        do {
            try segment.finishWrites()
            state.withLock {
                $0.recoveryPoint = RecoveryPoint(offset: offset, segment: segment, position: position)
            }
            writeRecoveryPoint()
        } catch {
            fence(because: "\(error)")
        }
    }
}
