import EdgeLogKafka
@testable import EdgeLogServer
import Testing
@testable import EdgeLogKafkaListener

/// KIP-227's session rules as the broker applies them.
@Suite struct FetchSessionCacheTests {
    typealias Cache = FetchSessionCache

    static func target(_ topic: String, _ partition: Int32, offset: Int64 = 0) -> Cache.Target {
        .init(key: .init(topic: topic, partition: partition), entry: .init(topicId: .zero, fetchOffset: offset, maxBytes: 1 << 20))
    }

    static func sessionId(_ context: Cache.Context) -> Int32? {
        if case .created(let id, _) = context { return id }
        return nil
    }

    @Test func aSessionHoldsItsPartitionsAndTakesUpdatesAndForgettings() throws {
        let cache = Cache(slots: 10)
        let opened = cache.context(sessionId: 0, epoch: 0, requested: [Self.target("a", 0), Self.target("a", 1), Self.target("b", 0)], forgotten: [])
        let id = try #require(Self.sessionId(opened))
        let next = cache.context(sessionId: id, epoch: 1, requested: [Self.target("a", 1, offset: 42)], forgotten: [.init(topic: "b", partition: 0)])
        guard case .incremental(_, let targets) = next else { Issue.record("\(next)"); return }
        #expect(targets.map(\.key) == [.init(topic: "a", partition: 0), .init(topic: "a", partition: 1)])
        #expect(targets[1].entry.fetchOffset == 42, "the new position replaces the held one")
    }

    @Test func aWrongEpochOrAnUnknownSessionIsRefused() throws {
        let cache = Cache(slots: 10)
        let id = try #require(Self.sessionId(cache.context(sessionId: 0, epoch: 0, requested: [Self.target("a", 0)], forgotten: [])))
        guard case .failed(let skipped) = cache.context(sessionId: id, epoch: 2, requested: [], forgotten: []) else {
            Issue.record("an epoch ahead is refused"); return
        }
        #expect(skipped == .invalidFetchSessionEpoch)
        guard case .failed(let unknown) = cache.context(sessionId: id + 1, epoch: 1, requested: [], forgotten: []) else {
            Issue.record("an unknown session is refused"); return
        }
        #expect(unknown == .fetchSessionIdNotFound)
        guard case .sessionless = cache.context(sessionId: id, epoch: -1, requested: [], forgotten: []) else {
            Issue.record("epoch -1 closes the session"); return
        }
        #expect(cache.count == 0)
    }

    @Test func theLeastRecentlyUsedSessionMakesRoomAndNoSlotsMeansNoSessions() throws {
        let cache = Cache(slots: 2)
        let first = try #require(Self.sessionId(cache.context(sessionId: 0, epoch: 0, requested: [Self.target("a", 0)], forgotten: [])))
        let second = try #require(Self.sessionId(cache.context(sessionId: 0, epoch: 0, requested: [Self.target("a", 0)], forgotten: [])))
        _ = cache.context(sessionId: first, epoch: 1, requested: [], forgotten: [])  // first is now the more recent
        _ = try #require(Self.sessionId(cache.context(sessionId: 0, epoch: 0, requested: [Self.target("a", 0)], forgotten: [])))
        #expect(cache.count == 2)
        guard case .failed(.fetchSessionIdNotFound) = cache.context(sessionId: second, epoch: 1, requested: [], forgotten: []) else {
            Issue.record("the least recently used session was evicted"); return
        }
        guard case .sessionless = Cache(slots: 0).context(sessionId: 0, epoch: 0, requested: [], forgotten: []) else {
            Issue.record("no slots, no sessions"); return
        }
    }
}
