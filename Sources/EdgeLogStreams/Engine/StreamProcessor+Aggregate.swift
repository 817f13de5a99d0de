extension StreamProcessor {
    /// The windows a record at `timeMs` belongs to, as (start, end): one tumbling window,
    /// size / advance hopping ones, or the single never-closing window of a query without
    /// WINDOW. Sessions and count windows are found per key instead.
    func fixedWindows(at timeMs: Int64) -> [(start: Int64, end: Int64)] {
        guard case .aggregate(_, _, let window, _, _) = plan.shape else { return [] }
        switch window {
        case nil: return [(.min, .max)]
        case .tumbling(let size, _)?:
            let start = TimeFormat.floor(timeMs, to: size.milliseconds)
            return [(start, start &+ size.milliseconds)]
        case .hopping(let size, let advance, _)?:
            var windows: [(start: Int64, end: Int64)] = []
            var start = TimeFormat.floor(timeMs, to: advance.milliseconds)
            while start &+ size.milliseconds > timeMs {
                windows.append((start, start &+ size.milliseconds))
                start -= advance.milliseconds
            }
            return windows.reversed()
        case .session?, .count?: return []
        }
    }

    /// When a window closes: its end plus grace (a session's also waits one gap, for a record
    /// that would extend it). Never for a query without WINDOW or with a count window.
    func closeAt(_ window: WindowState) -> Int64 {
        guard case .aggregate(_, _, let kind, _, _) = plan.shape else { return .max }
        switch kind {
        case nil, .count?: return .max
        case .session(let gap, _)?: return window.endMs &+ gap.milliseconds &+ plan.graceMs
        case .tumbling?, .hopping?: return window.endMs == .max ? .max : window.endMs &+ plan.graceMs
        }
    }

    var specs: [AggregateSpec] {
        if case .aggregate(_, let aggregates, _, _, _) = plan.shape { return aggregates }
        return []
    }

    func aggregate(_ record: StreamRecord, _ timeMs: Int64, groups: [StreamValue], slot existing: Int?, into outputs: inout [StreamOutput]) {
        guard case .aggregate(_, let specs, let window, _, _) = plan.shape else { return }
        let readings = readings(specs)
        let slot = existing ?? store.insert(KeyState(groups: groups, keyText: Self.keyText(groups)))
        var late = false
        var accepted = false
        switch window {
        case .session(let gap, _)?:
            (late, accepted) = addToSession(slot, timeMs, gap: gap.milliseconds, readings, specs, into: &outputs)
        case .count(let size)?:
            addToCountWindow(slot, timeMs, size: size, readings, specs, into: &outputs)
            accepted = true
        case .tumbling(let size, _)?:
            // One window: no list of them made per record.
            let start = TimeFormat.floor(timeMs, to: size.milliseconds)
            addToFixedWindow(slot, (start, start &+ size.milliseconds), timeMs, readings, specs, late: &late, accepted: &accepted, into: &outputs)
        default:
            for bounds in fixedWindows(at: timeMs) {
                addToFixedWindow(slot, bounds, timeMs, readings, specs, late: &late, accepted: &accepted, into: &outputs)
            }
        }
        if late { countLate(record, accepted: accepted, into: &outputs) }
        if store.slots[slot]?.windows.isEmpty == true { store.remove(slot) }
        enforceByteBound(keeping: slot, into: &outputs)
    }

    /// A record into one tumbling or hopping window of its key: late when the window closed
    /// (unless kept for updates), new windows scheduled to close.
    func addToFixedWindow(
        _ slot: Int, _ bounds: (start: Int64, end: Int64), _ timeMs: Int64, _ readings: [StreamValue], _ specs: [AggregateSpec],
        late: inout Bool, accepted: inout Bool, into outputs: inout [StreamOutput]
    ) {
        let probe = WindowState(startMs: bounds.start, endMs: bounds.end, aggregates: [])
        let existingWindow = store.slots[slot]!.windows[bounds.start]
        if closeAt(probe) <= watermarkMs {
            // Closed already: late, unless kept for updates.
            guard case .update = plan.latePolicy, existingWindow?.closed == true else {
                late = true
                return
            }
            store.update(slot) { $0.windows[bounds.start]!.add(readings, specs, timeMs, sequence) }
            metrics.lateUpdates += 1
            late = true
            accepted = true
            emit(slot, start: bounds.start, update: true, into: &outputs)
            return
        }
        let isNew = existingWindow == nil
        store.update(slot) { state in
            if isNew {
                state.windows[bounds.start] = WindowState(
                    startMs: bounds.start, endMs: bounds.end, aggregates: specs.map { AggregateState.initial($0.kind) })
            }
            state.windows[bounds.start]!.add(readings, specs, timeMs, sequence)
        }
        if isNew { schedule(slot, start: bounds.start) }
        accepted = true
        if plan.emit == .changes { emit(slot, start: bounds.start, into: &outputs) }
    }

    /// Each aggregate's reading of the current record. An argument shared by several
    /// aggregates (avg, min, max and last of one field) is evaluated once.
    func readings(_ specs: [AggregateSpec]) -> [StreamValue] {
        var readings = [StreamValue](repeating: .null, count: specs.count)
        for index in specs.indices {
            guard let argument = specs[index].argument else { continue }
            if let earlier = plan.argumentSources[index] {
                readings[index] = readings[earlier]
            } else {
                readings[index] = argument.evaluate(context)
            }
        }
        return readings
    }

    func countLate(_ record: StreamRecord, accepted: Bool, into outputs: inout [StreamOutput]) {
        metrics.late += 1
        guard !accepted else { return }
        if case .sideTopic = plan.latePolicy {
            metrics.lateToSideTopic += 1
            var headers = record.headers
            headers.append(.init(key: "edgelog-late-watermark", value: Array(String(watermarkMs).utf8)))
            outputs.append(StreamOutput(destination: .late, key: record.key, value: record.value, timestampMs: record.timestampMs, headers: headers))
        } else {
            metrics.lateDropped += 1
        }
    }

    /// Sessions: a record joins every session of its key it is within one gap of, merging them.
    func addToSession(
        _ slot: Int, _ timeMs: Int64, gap: Int64, _ readings: [StreamValue], _ specs: [AggregateSpec],
        into outputs: inout [StreamOutput]
    ) -> (late: Bool, accepted: Bool) {
        let touching = store.slots[slot]!.windows.values
            .filter { $0.startMs &- gap <= timeMs && timeMs <= $0.endMs &+ gap }
            .sorted { $0.startMs < $1.startMs }
        if touching.contains(where: \.closed) || (touching.isEmpty && closeAt(WindowState(startMs: timeMs, endMs: timeMs, aggregates: [])) <= watermarkMs) {
            return (true, false)
        }
        var session = WindowState(startMs: timeMs, endMs: timeMs, aggregates: specs.map { AggregateState.initial($0.kind) })
        for other in touching {
            session.startMs = min(session.startMs, other.startMs)
            session.endMs = max(session.endMs, other.endMs)
            session.records += other.records
            session.aggregates = zip(session.aggregates, other.aggregates).enumerated().map { index, pair in
                pair.0.merged(with: pair.1, specs[index].kind)
            }
        }
        session.add(readings, specs, timeMs, sequence)
        let merged = session
        store.update(slot) { state in
            for other in touching { state.windows[other.startMs] = nil }
            state.windows[merged.startMs] = merged
        }
        schedule(slot, start: merged.startMs)
        if plan.emit == .changes { emit(slot, start: merged.startMs, into: &outputs) }
        return (false, true)
    }

    /// Count windows: every `size` records of a key make one window, emitted when full.
    func addToCountWindow(
        _ slot: Int, _ timeMs: Int64, size: Int64, _ readings: [StreamValue], _ specs: [AggregateSpec],
        into outputs: inout [StreamOutput]
    ) {
        let current = store.slots[slot]!.completedCountWindows
        let full = store.update(slot) { state -> Bool in
            var window = state.windows[current] ?? WindowState(startMs: timeMs, endMs: timeMs, aggregates: specs.map { AggregateState.initial($0.kind) })
            window.add(readings, specs, timeMs, sequence)
            window.startMs = min(window.startMs, timeMs)
            window.endMs = max(window.endMs, timeMs)
            state.windows[current] = window
            return window.records >= size
        }
        if plan.emit == .changes || full { emit(slot, start: current, into: &outputs) }
        if full {
            store.update(slot) { state in
                state.windows[current] = nil
                state.completedCountWindows += 1
            }
        }
    }

    func schedule(_ slot: Int, start: Int64) {
        guard let window = store.slots[slot]?.windows[start] else { return }
        let at = closeAt(window)
        guard at != .max else { return }
        store.schedule(.init(atMs: at, startMs: start, keyText: store.slots[slot]!.keyText, slot: slot, removal: false))
    }

    /// Closes every window the watermark has passed, in order of closing time (then start,
    /// then key), so the output order is the same on every run.
    func closeWindows(into outputs: inout [StreamOutput]) {
        while let deadline = store.nextDeadline(upTo: watermarkMs) {
            guard let state = store.slots[deadline.slot], state.keyText == deadline.keyText,
                let window = state.windows[deadline.startMs]
            else { continue }
            if deadline.removal {
                guard window.closed else { continue }
                forget(deadline.slot, start: deadline.startMs)
                continue
            }
            guard !window.closed, closeAt(window) == deadline.atMs else { continue }
            if plan.emit == .final { emit(deadline.slot, start: deadline.startMs, into: &outputs) }
            if case .update(let retentionMs) = plan.latePolicy, retentionMs > 0 {
                store.modify(deadline.slot) { $0.windows[deadline.startMs]!.closed = true }
                store.schedule(.init(
                    atMs: deadline.atMs &+ retentionMs, startMs: deadline.startMs, keyText: deadline.keyText, slot: deadline.slot,
                    removal: true))
            } else {
                forget(deadline.slot, start: deadline.startMs)
            }
        }
        store.compactDeadlinesIfNeeded { deadline, state in
            guard let state, state.keyText == deadline.keyText, let window = state.windows[deadline.startMs] else { return false }
            return deadline.removal ? window.closed : !window.closed
        }
    }

    private func forget(_ slot: Int, start: Int64) {
        store.modify(slot) { $0.windows[start] = nil }
        if store.slots[slot]!.windows.isEmpty && store.slots[slot]!.completedCountWindows == 0 { store.remove(slot) }
    }

    /// Emits a window's result (if HAVING lets it through).
    func emit(_ slot: Int, start: Int64, update: Bool = false, partial: Bool = false, into outputs: inout [StreamOutput]) {
        guard case .aggregate(_, let specs, let window, let columns, let having) = plan.shape,
            let state = store.slots[slot], let result = state.windows[start]
        else { return }
        let record = context.record
        defer { context.record = record }
        context.record = nil
        context.groups = state.groups
        context.aggregates = zip(result.aggregates, specs).map { $0.result($1.kind) }
        let windowed = window != nil
        context.windowStartMs = windowed ? result.startMs : nil
        context.windowEndMs = windowed ? result.endMs : nil
        if let having, !having.evaluate(context).isTrue { return }
        var fields = columns.map { (name: $0.name, value: $0.expression.evaluate(context)) }
        if windowed {
            if !fields.contains(where: { $0.name == "window_start" }) { fields.append(("window_start", .int(result.startMs))) }
            if !fields.contains(where: { $0.name == "window_end" }) { fields.append(("window_end", .int(result.endMs))) }
        }
        var writer = StreamJSONWriter()
        writer.object(fields)
        let key = windowed ? (state.groups.isEmpty ? String(result.startMs) : state.keyText + "|" + String(result.startMs)) : state.keyText
        var headers: [StreamRecord.Header] = []
        if partial { headers.append(.init(key: "edgelog-partial", value: Array("true".utf8))) }
        if update { headers.append(.init(key: "edgelog-late-update", value: Array("true".utf8))) }
        outputs.append(StreamOutput(
            destination: .output, key: Array(key.utf8), value: writer.bytes,
            timestampMs: windowed ? result.startMs : context.eventTimeMs, headers: headers))
        metrics.recordsOut += 1
    }

    static func keyText(_ groups: [StreamValue]) -> String {
        groups.count == 1 ? groups[0].text : groups.map(\.text).joined(separator: "|")
    }

    enum Room { case room, dropRecord, pause }

    /// Before a new key enters state: what the state bound says.
    func makeRoomForNewKey(into outputs: inout [StreamOutput]) -> Room {
        while store.keyCount > 0 && (store.keyCount >= plan.maxKeys || store.stateBytes >= plan.maxStateBytes) {
            switch plan.onStateFull {
            case .dropNew: return .dropRecord
            case .pause: return .pause
            case .evict: evictLeastRecent(into: &outputs)
            }
        }
        return .room
    }

    /// Past the byte bound (a key's state grew): evict the least recent keys but `keeping`.
    func enforceByteBound(keeping slot: Int, into outputs: inout [StreamOutput]) {
        guard plan.onStateFull == .evict else { return }
        while store.stateBytes > plan.maxStateBytes, let oldest = store.leastRecent, oldest != slot {
            evictLeastRecent(into: &outputs)
        }
    }

    /// Emits the least recently updated key's open windows early, flagged partial, and
    /// forgets it.
    func evictLeastRecent(into outputs: inout [StreamOutput]) {
        guard let slot = store.leastRecent else { return }
        let starts = store.slots[slot]!.windows.values.filter { !$0.closed }.map(\.startMs).sorted()
        for start in starts { emit(slot, start: start, partial: true, into: &outputs) }
        store.remove(slot)
        metrics.evictions += 1
    }
}

extension WindowState {
    mutating func add(_ readings: [StreamValue], _ specs: [AggregateSpec], _ timeMs: Int64, _ sequence: Int64) {
        for index in specs.indices {
            aggregates[index].add(specs[index].kind, readings[index], timeMs: timeMs, sequence: sequence)
        }
        records += 1
    }
}
