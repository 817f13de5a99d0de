import HeapModule

/// One open (or, for late updates, retained) window of one key.
struct WindowState: Sendable, Equatable {
    var startMs: Int64
    /// Exclusive for tumbling and hopping windows; a session's last event time; a count
    /// window's latest event time.
    var endMs: Int64
    var aggregates: [AggregateState]
    var records: Int64 = 0
    /// Closed and emitted, kept only so a late record can update it (LATE = 'update').
    var closed = false
}

/// What a processor holds for one key: its group values and its windows by start time.
struct KeyState: Sendable, Equatable {
    var groups: [StreamValue]
    var keyText: String
    var windows: [Int64: WindowState] = [:]
    /// Count windows: how many have been completed, so each has its own number.
    var completedCountWindows: Int64 = 0
    /// DEDUPE, THROTTLE and DEADBAND's memory of this key (stateless queries only).
    var filter: KeyFilterState?
    var bytes = 0

    var estimatedBytes: Int {
        var total = 96 + keyText.utf8.count + groups.reduce(0) { $0 + $1.estimatedBytes }
        for window in windows.values { total += 64 + window.aggregates.reduce(0) { $0 + $1.estimatedBytes } }
        if let filter { total += filter.estimatedBytes }
        return total
    }
}

/// Every key's state, with the two orders a processor needs: least recently updated first
/// (which key to evict at the state bound) and earliest closing time first (which windows the
/// watermark has closed). Keys live in slots of an array, linked into the recency list by
/// index, so neither order costs an allocation per record.
struct WindowStore: Sendable {
    private(set) var slots: [KeyState?] = []
    private var freeSlots: [Int] = []
    private var slotByGroups: [[StreamValue]: Int] = [:]
    private var newer: [Int] = []
    private var older: [Int] = []
    private var oldest = -1
    private var newest = -1
    private(set) var stateBytes = 0
    private(set) var openWindows = 0

    /// A window to look at when the watermark passes `atMs`: to close it, or (`removal`) to
    /// forget a closed one kept for late updates. Entries go stale when a session grows or a
    /// key is evicted; they are checked when taken.
    struct Deadline: Comparable, Sendable {
        var atMs: Int64
        var startMs: Int64
        var keyText: String
        var slot: Int
        var removal: Bool

        static func < (a: Deadline, b: Deadline) -> Bool {
            (a.atMs, a.startMs, a.keyText, a.slot, a.removal ? 1 : 0) < (b.atMs, b.startMs, b.keyText, b.slot, b.removal ? 1 : 0)
        }
    }

    private(set) var deadlines = Heap<Deadline>()

    var keyCount: Int { slotByGroups.count }

    func slot(for groups: [StreamValue]) -> Int? { slotByGroups[groups] }

    mutating func insert(_ state: KeyState) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = state
        } else {
            slot = slots.count
            slots.append(state)
            newer.append(-1)
            older.append(-1)
        }
        slotByGroups[state.groups] = slot
        slots[slot]!.bytes = state.estimatedBytes
        stateBytes += slots[slot]!.bytes
        openWindows += state.windows.count
        link(slot)
        return slot
    }

    /// Changes a key's state in place, keeps the byte count, and makes it the most recent.
    mutating func update<T>(_ slot: Int, _ body: (inout KeyState) -> T) -> T {
        let result = modify(slot, body)
        unlink(slot)
        link(slot)
        return result
    }

    /// Changes a key's state without making it recent (closing windows is not use).
    mutating func modify<T>(_ slot: Int, _ body: (inout KeyState) -> T) -> T {
        let windowsBefore = slots[slot]!.windows.count
        let result = body(&slots[slot]!)
        let bytes = slots[slot]!.estimatedBytes
        stateBytes += bytes - slots[slot]!.bytes
        slots[slot]!.bytes = bytes
        openWindows += slots[slot]!.windows.count - windowsBefore
        return result
    }

    @discardableResult
    mutating func remove(_ slot: Int) -> KeyState {
        let state = slots[slot]!
        slots[slot] = nil
        slotByGroups[state.groups] = nil
        stateBytes -= state.bytes
        openWindows -= state.windows.count
        unlink(slot)
        freeSlots.append(slot)
        return state
    }

    /// The least recently updated key.
    var leastRecent: Int? { oldest >= 0 ? oldest : nil }

    /// Every key's slot, least recently updated first: the order a snapshot keeps, so that a
    /// restored store evicts the same keys as the one saved.
    var slotsLeastRecentFirst: [Int] {
        var order: [Int] = []
        order.reserveCapacity(keyCount)
        var slot = oldest
        while slot >= 0 {
            order.append(slot)
            slot = newer[slot]
        }
        return order
    }

    mutating func schedule(_ deadline: Deadline) { deadlines.insert(deadline) }

    /// The next deadline at or before `watermarkMs`, taken off the heap.
    mutating func nextDeadline(upTo watermarkMs: Int64) -> Deadline? {
        guard let first = deadlines.min, first.atMs <= watermarkMs else { return nil }
        return deadlines.removeMin()
    }

    private mutating func link(_ slot: Int) {
        older[slot] = newest
        newer[slot] = -1
        if newest >= 0 { newer[newest] = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let before = older[slot]
        let after = newer[slot]
        if before >= 0 { newer[before] = after } else { oldest = after }
        if after >= 0 { older[after] = before } else { newest = before }
        older[slot] = -1
        newer[slot] = -1
    }
}

extension WindowStore {
    /// Drops deadlines of windows that no longer exist once they outnumber the live ones, so
    /// keys evicted at the state bound do not leave their deadlines behind in memory.
    mutating func compactDeadlinesIfNeeded(isLive: (Deadline, KeyState?) -> Bool) {
        guard deadlines.count > 2 * openWindows + 1024 else { return }
        let live = deadlines.unordered.filter { isLive($0, slots[$0.slot]) }
        deadlines = Heap(live)
    }
}
