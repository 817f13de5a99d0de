/// Runs one processor's query over records, deterministically: what it emits depends only on
/// the records it is given, in order, and on the idle notices of its driver, never on when it
/// runs. The daemon drives it from the log; `edgelog streams test` drives it from a fixture on
/// virtual time. Not thread-safe: one driver owns it.
///
/// Time: each record's event time is its TIMESTAMP BY value, else its timestamp. Each input
/// partition's watermark is the greatest event time read from it minus OUT_OF_ORDER; the
/// processor's is the least of its partitions' and never goes back. A window closes once the
/// watermark reaches its end plus its grace. A partition that has been read to its end and
/// stays idle lets its watermark follow the wall clock (`markIdle`), so a quiet sensor's last
/// window still closes.
public final class StreamProcessor {
    public let plan: ProcessorPlan
    public internal(set) var metrics = ProcessorMetrics()
    let context = EvaluationContext()
    var store = WindowStore()
    var inputClocks: [InputPartition: InputClock] = [:]
    /// Read order, to break ties of event time deterministically (first and last).
    var sequence: Int64 = 0
    public internal(set) var watermarkMs: Int64 = .min

    public struct InputPartition: Hashable, Sendable, Comparable {
        public var topic: String
        public var partition: Int32

        public init(topic: String, partition: Int32) {
            self.topic = topic
            self.partition = partition
        }

        public static func < (a: InputPartition, b: InputPartition) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    }

    struct InputClock: Sendable {
        var maxEventMs: Int64?
        /// Where the wall clock has brought this partition's watermark while it was idle.
        var idleFloorMs: Int64?

        func watermark(outOfOrderMs: Int64) -> Int64 {
            let fromEvents = maxEventMs.map { $0 &- outOfOrderMs } ?? .min
            return max(fromEvents, idleFloorMs ?? .min)
        }
    }

    public enum Outcome: Sendable, Equatable {
        case consumed
        /// At the state bound with ON_STATE_FULL = 'pause': nothing was done; offer the same
        /// record again later (after `markIdle` has let windows close).
        case paused
    }

    public init(plan: ProcessorPlan) {
        self.plan = plan
    }

    /// Names an input partition before its first record, so the watermark waits for it.
    public func registerInput(topic: String, partition: Int32) {
        let input = InputPartition(topic: topic, partition: partition)
        if inputClocks[input] == nil { inputClocks[input] = InputClock() }
    }

    /// Processes one record and appends what it causes to `outputs`.
    public func process(_ record: StreamRecord, wallClockMs: Int64, into outputs: inout [StreamOutput]) -> Outcome {
        context.record = record
        context.groups = []
        context.aggregates = []
        context.windowStartMs = nil
        context.windowEndMs = nil
        let eventTimeMs: Int64
        switch eventTime(of: record, wallClockMs: wallClockMs) {
        case .failure(let reason):
            metrics.recordsIn += 1
            metrics.deadLettered += 1
            outputs.append(deadLetter(record, reason: reason))
            return .consumed
        case .success(let time):
            eventTimeMs = time
        }
        context.eventTimeMs = eventTimeMs
        let passes = plan.filter.map { $0.evaluate(context).isTrue } ?? true
        var slot: Int? = nil
        var groups: [StreamValue] = []
        if passes, case .aggregate(let groupBy, _, _, _, _) = plan.shape {
            groups = groupBy.map { $0.evaluate(context) }
            slot = store.slot(for: groups)
            if slot == nil {
                switch makeRoomForNewKey(into: &outputs) {
                case .room: break
                case .dropRecord:
                    metrics.recordsIn += 1
                    metrics.droppedNewKeys += 1
                    advanceClock(record, eventTimeMs, into: &outputs)
                    return .consumed
                case .pause:
                    metrics.pauses += 1
                    return .paused
                }
            }
        }
        var keyVerdict = KeyFilterVerdict.pass
        if passes, let filters = plan.keyFilters {
            keyVerdict = applyKeyFilters(filters, key: filterKey(record), eventTimeMs: eventTimeMs, into: &outputs)
            if keyVerdict == .pause {
                metrics.pauses += 1
                return .paused
            }
        }
        metrics.recordsIn += 1
        sequence += 1
        advanceClock(record, eventTimeMs, into: &outputs, closing: false)
        if !passes {
            metrics.filtered += 1
        } else if keyVerdict != .pass {
            // Counted by the filter that dropped it.
        } else {
            switch plan.shape {
            case .stateless(let columns, let star, let passThrough, let partitionBy):
                outputs.append(project(record, eventTimeMs, columns, star: star, passThrough: passThrough, partitionBy: partitionBy))
                metrics.recordsOut += 1
            case .aggregate:
                context.record = record
                context.eventTimeMs = eventTimeMs
                aggregate(record, eventTimeMs, groups: groups, slot: slot, into: &outputs)
            }
        }
        closeWindows(into: &outputs)
        refreshGauges()
        return .consumed
    }

    /// The driver's notice that `partition` has been read to its end and nothing came for the
    /// query's IDLE_TIMEOUT: its watermark follows the wall clock from now on.
    public func markIdle(topic: String, partition: Int32, wallClockMs: Int64, into outputs: inout [StreamOutput]) {
        let input = InputPartition(topic: topic, partition: partition)
        var clock = inputClocks[input] ?? InputClock()
        clock.idleFloorMs = max(clock.idleFloorMs ?? .min, wallClockMs &- plan.outOfOrderMs)
        inputClocks[input] = clock
        updateWatermark()
        closeWindows(into: &outputs)
        refreshGauges()
    }

    /// The end of a bounded input (a test's fixture): every window closes and, for EMIT
    /// FINAL, is emitted.
    public func closeAll(into outputs: inout [StreamOutput]) {
        watermarkMs = .max
        closeWindows(into: &outputs)
        refreshGauges()
    }

    func eventTime(of record: StreamRecord, wallClockMs: Int64) -> Result<Int64, DeadLetterReason> {
        let time: Int64
        let reference: Int64
        if let timestampBy = plan.timestampBy {
            context.eventTimeMs = record.timestampMs
            let value = timestampBy.evaluate(context)
            switch value {
            case .int(let ms): time = ms
            case .double(let ms) where ms.isFinite && abs(ms) < 9e18: time = Int64(ms)
            case .string(let text):
                guard let ms = TimeFormat.parseISO8601(text) ?? Int64(text) else {
                    return .failure(.noEventTime("TIMESTAMP BY gave '\(text)', which is neither milliseconds nor an ISO 8601 time"))
                }
                time = ms
            default:
                return .failure(.noEventTime("TIMESTAMP BY gave \(value.isNull ? "null" : value.typeName), not a time"))
            }
            // Judged against the time the record reached the log, so the answer is the same
            // whenever the processor reads it.
            reference = record.timestampMs
        } else {
            time = record.timestampMs
            reference = wallClockMs
        }
        if time > reference &+ plan.maxFutureMs { return .failure(.future(aheadMs: time - reference)) }
        return .success(time)
    }

    enum DeadLetterReason: Error {
        case noEventTime(String)
        case future(aheadMs: Int64)

        var text: String {
            switch self {
            case .noEventTime(let why): why
            case .future(let ahead): "event time \(ahead) ms ahead of the record's arrival, past MAX_FUTURE"
            }
        }
    }

    func deadLetter(_ record: StreamRecord, reason: DeadLetterReason) -> StreamOutput {
        var headers = record.headers
        headers.append(.init(key: "edgelog-dead-letter-reason", value: Array(reason.text.utf8)))
        headers.append(.init(key: "edgelog-source", value: Array("\(record.topic)/\(record.partition)/\(record.offset)".utf8)))
        return StreamOutput(destination: .deadLetter, key: record.key, value: record.value, timestampMs: record.timestampMs, headers: headers)
    }

    /// Moves the record's partition clock and the processor's watermark.
    func advanceClock(_ record: StreamRecord, _ eventTimeMs: Int64, into outputs: inout [StreamOutput], closing: Bool = true) {
        let input = InputPartition(topic: record.topic, partition: record.partition)
        var clock = inputClocks[input] ?? InputClock()
        clock.maxEventMs = max(clock.maxEventMs ?? .min, eventTimeMs)
        inputClocks[input] = clock
        updateWatermark()
        if closing { closeWindows(into: &outputs) }
    }

    /// The key DEDUPE, THROTTLE and DEADBAND keep state by: the PARTITION BY value, else the
    /// record's key.
    func filterKey(_ record: StreamRecord) -> String {
        if case .stateless(_, _, _, let partitionBy?) = plan.shape { return partitionBy.evaluate(context).text }
        return record.key.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    func updateWatermark() {
        var least = Int64.max
        for clock in inputClocks.values { least = min(least, clock.watermark(outOfOrderMs: plan.outOfOrderMs)) }
        if least != .max { watermarkMs = max(watermarkMs, least) }
    }

    func refreshGauges() {
        metrics.keys = store.keyCount
        metrics.openWindows = store.openWindows
        metrics.stateBytes = store.stateBytes
        metrics.watermarkMs = watermarkMs == .min ? nil : watermarkMs
    }
}
