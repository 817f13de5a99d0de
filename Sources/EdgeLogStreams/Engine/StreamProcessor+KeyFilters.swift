/// What DEDUPE, THROTTLE and DEADBAND remember of one key.
struct KeyFilterState: Sendable, Equatable {
    /// DEDUPE: each id's latest event time. Ids older than the span are pruned once their
    /// number doubles since the last pruning (`pruneAt`), so the cost stays amortized.
    var seen: [String: Int64] = [:]
    var pruneAt = 64
    /// THROTTLE: the current window of event time and the records passed in it.
    var throttleStartMs: Int64 = .min
    var throttlePassed: Int64 = 0
    /// DEADBAND: the value and event time of the last record that passed.
    var lastValue: Double?
    var lastPassedMs: Int64?

    var estimatedBytes: Int {
        48 + seen.keys.reduce(0) { $0 + 40 + $1.utf8.count }
    }
}

extension StreamProcessor {
    enum KeyFilterVerdict: Equatable {
        case pass, pause
        case dropped(Reason)

        enum Reason { case duplicate, throttled, deadband, newKey }
    }

    /// Runs a stateless query's per-key filters on the current record (WHERE passed), in
    /// order: DEDUPE, THROTTLE, DEADBAND; the first that says no drops the record, and is
    /// counted. Everything is judged on event time, so a replay judges the same.
    func applyKeyFilters(_ filters: ProcessorPlan.KeyFilters, key: String, eventTimeMs: Int64, into outputs: inout [StreamOutput]) -> KeyFilterVerdict {
        let groups = [StreamValue.string(key)]
        var slot = store.slot(for: groups)
        if slot == nil {
            switch makeRoomForNewKey(into: &outputs) {
            case .room: break
            case .dropRecord:
                metrics.droppedNewKeys += 1
                return .dropped(.newKey)
            case .pause: return .pause
            }
            var state = KeyState(groups: groups, keyText: key)
            state.filter = KeyFilterState()
            slot = store.insert(state)
        }
        let dedupeId = filters.dedupeId.map { $0.evaluate(context) }
        let deadbandValue = filters.deadbandValue.flatMap { $0.evaluate(context).double }
        let verdict = store.update(slot!) { state -> KeyFilterVerdict in
            var filter = state.filter ?? KeyFilterState()
            defer { state.filter = filter }
            if let id = dedupeId, !id.isNull {
                let text = id.text
                if let seenMs = filter.seen[text], abs(eventTimeMs - seenMs) <= filters.dedupeWithinMs {
                    filter.seen[text] = max(seenMs, eventTimeMs)
                    return .dropped(.duplicate)
                }
                filter.seen[text] = max(filter.seen[text] ?? .min, eventTimeMs)
                if filter.seen.count >= filter.pruneAt {
                    let horizon = eventTimeMs &- filters.dedupeWithinMs
                    filter.seen = filter.seen.filter { $0.value >= horizon }
                    filter.pruneAt = max(64, 2 * filter.seen.count)
                }
            }
            if let limit = filters.throttleCount {
                let start = TimeFormat.floor(eventTimeMs, to: filters.throttlePerMs)
                if start > filter.throttleStartMs {
                    filter.throttleStartMs = start
                    filter.throttlePassed = 0
                }
                // A record from a window already left behind is over the rate too.
                guard start == filter.throttleStartMs, filter.throttlePassed < limit else { return .dropped(.throttled) }
                filter.throttlePassed += 1
            }
            if let number = deadbandValue {
                let moved = filter.lastValue.map { abs(number - $0) > filters.deadbandThreshold } ?? true
                let due = filters.deadbandEveryMs.map { every in filter.lastPassedMs.map { eventTimeMs - $0 >= every } ?? true } ?? false
                guard moved || due else { return .dropped(.deadband) }
                filter.lastValue = number
                filter.lastPassedMs = eventTimeMs
            }
            return .pass
        }
        switch verdict {
        case .dropped(.duplicate): metrics.deduplicated += 1
        case .dropped(.throttled): metrics.throttled += 1
        case .dropped(.deadband): metrics.deadbanded += 1
        case .dropped(.newKey), .pass, .pause: break
        }
        enforceByteBound(keeping: slot!, into: &outputs)
        return verdict
    }
}
