import EdgeLogStorage
import EdgeLogCore

/// The hand-off of `ack = fast`: MQTT network threads push records, one task takes them in
/// batches and appends them.
///
/// Bounded: `push` blocks while `capacity` records wait, which holds the network thread, so
/// libmosquitto reads (and acknowledges) nothing more until the log catches up — the broker
/// queues meanwhile. Everything in here has been acknowledged to the broker and is not in the
/// log yet: it is what a crash loses.
///
/// Thread safety: `push` and `close` from any thread (`push` blocks, so never from a task);
/// `take` from one task at a time.
package final class MQTTRecordQueue: @unchecked Sendable {
    struct Item: Sendable {
        var topic: String
        var record: Record
    }

    let capacity: Int
    private let condition = BlockingCondition()
    // Under `condition`: items[head...] wait to be taken.
    private var items: [Item] = []
    private var head = 0
    private var closed = false
    private var consumer: CheckedContinuation<Void, Never>? = nil

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    /// Whether `close()` has been called.
    var isClosed: Bool { condition.withLock { closed } }

    /// Records waiting.
    var count: Int { condition.withLock { items.count - head } }

    /// Queues `item`, blocking while the queue is full. False, with nothing queued, once the
    /// queue is closed.
    func push(_ item: Item) -> Bool {
        var waiting: CheckedContinuation<Void, Never>? = nil
        let queued = condition.withLock {
            while items.count - head >= capacity && !closed { condition.wait() }
            guard !closed else { return false }
            items.append(item)
            waiting = consumer
            consumer = nil
            return true
        }
        waiting?.resume()
        return queued
    }

    /// The oldest records, at most `maxItems`, waiting while there are none; nil once the
    /// queue is closed and empty.
    func take(maxItems: Int) async -> [Item]? {
        precondition(maxItems > 0)
        while true {
            let batch: [Item]? = condition.withLock {
                let available = items.count - head
                if available > 0 {
                    let taken = min(available, maxItems)
                    let batch = Array(items[head..<head + taken])
                    head += taken
                    if head == items.count {
                        items.removeAll(keepingCapacity: true)
                        head = 0
                    } else if head >= 4096 {
                        items.removeFirst(head)
                        head = 0
                    }
                    condition.broadcast()
                    return batch
                }
                return closed ? [] : nil
            }
            if let batch { return batch.isEmpty ? nil : batch }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = condition.withLock {
                    if items.count > head || closed { return true }
                    consumer = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }

    /// No more pushes: blocked and later ones return false; `take` returns what is left, then nil.
    func close() {
        let waiting: CheckedContinuation<Void, Never>? = condition.withLock {
            closed = true
            condition.broadcast()
            let waiting = consumer
            consumer = nil
            return waiting
        }
        waiting?.resume()
    }
}
