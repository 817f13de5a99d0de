@testable import EdgeLogServer
import EdgeLogStorage
import Foundation
import Synchronization
import NIOCore
import Testing
@testable import EdgeLogMQTT

/// The bounded hand-off of `ack = fast`: order, backpressure, closing.
@Suite struct MQTTRecordQueueTests {
    static func item(_ index: Int, topic: String = "t") -> MQTTRecordQueue.Item {
        .init(topic: topic, record: Record(timestamp: 0, value: ByteBuffer(string: "\(index)")))
    }

    static func values(_ items: [MQTTRecordQueue.Item]?) -> [String] {
        (items ?? []).map { String(buffer: $0.record.value!) }
    }

    @Test func batchesComeOutInOrderAndAtMostMaxItemsLong() async {
        let queue = MQTTRecordQueue(capacity: 100)
        for index in 0..<10 { #expect(queue.push(Self.item(index))) }
        #expect(Self.values(await queue.take(maxItems: 4)) == ["0", "1", "2", "3"])
        #expect(Self.values(await queue.take(maxItems: 100)) == ["4", "5", "6", "7", "8", "9"])
        #expect(queue.count == 0)
    }

    @Test func aFullQueueBlocksThePusherUntilSomethingIsTaken() async throws {
        let queue = MQTTRecordQueue(capacity: 2)
        #expect(queue.push(Self.item(0)) && queue.push(Self.item(1)))
        let pushed = Mutex(false)
        let thread = Thread {
            _ = queue.push(Self.item(2))
            pushed.withLock { $0 = true }
        }
        thread.start()
        // The third push cannot finish while two records wait; it does once one is taken.
        try await Task.sleep(for: .milliseconds(100))
        #expect(!pushed.withLock { $0 })
        #expect(Self.values(await queue.take(maxItems: 1)) == ["0"])
        try await mqttEventually("the blocked push") { pushed.withLock { $0 } }
        #expect(Self.values(await queue.take(maxItems: 10)) == ["1", "2"])
    }

    @Test func aWaitingTakeWakesUpForAPush() async throws {
        let queue = MQTTRecordQueue(capacity: 10)
        let taker = Task { await queue.take(maxItems: 10) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(queue.push(Self.item(7)))
        #expect(Self.values(await taker.value) == ["7"])
    }

    @Test func closingReleasesBlockedPushersAndDrainsWhatIsLeft() async throws {
        let queue = MQTTRecordQueue(capacity: 1)
        #expect(queue.push(Self.item(0)))
        let result = Mutex<Bool?>(nil)
        Thread { result.withLock { $0 = queue.push(Self.item(1)) } }.start()
        try await Task.sleep(for: .milliseconds(50))
        queue.close()
        try await mqttEventually("the blocked push to return") { result.withLock { $0 } != nil }
        #expect(result.withLock { $0 } == false)
        #expect(!queue.push(Self.item(2)))
        #expect(Self.values(await queue.take(maxItems: 10)) == ["0"])
        #expect(await queue.take(maxItems: 10) == nil)
    }
}
