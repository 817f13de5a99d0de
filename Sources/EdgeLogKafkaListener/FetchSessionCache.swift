import EdgeLogKafka
import Metrics
import Synchronization
import EdgeLogCore

/// Incremental fetch sessions (KIP-227). A consumer that reads many partitions sends the whole
/// list once (epoch 0); the broker keeps it under a session id, and each later Fetch names only
/// the partitions whose position changed, and is answered only with partitions that have
/// records or whose high watermark, log start or error changed. An idle long poll over a
/// hundred partitions is then a few dozen bytes each way instead of a few kilobytes to encode
/// and decode.
///
/// Sessions are not tied to a connection, as in Kafka. At most `slots` are kept; a new one
/// evicts the least recently used (its client gets FETCH_SESSION_ID_NOT_FOUND and starts
/// over with a full fetch). With 0 slots every fetch is a full one.
package final class FetchSessionCache: Sendable {
    struct PartitionKey: Hashable, Sendable {
        var topic: String
        var partition: Int32
    }

    /// A partition as the session holds it: where the client reads, and what it was last told.
    struct Entry: Sendable {
        var topicId: KafkaUUID
        var fetchOffset: Int64
        var maxBytes: Int32
        /// The leader epoch the client believes in (-1: none), checked against ours.
        var currentLeaderEpoch: Int32 = -1
        var sentHighWatermark: Int64 = -2
        var sentLogStartOffset: Int64 = -2
    }

    /// One partition of a Fetch, in the order its answer lists them.
    struct Target: Sendable {
        var key: PartitionKey
        var entry: Entry
        /// Set when the request named a topic id this broker does not know.
        var unknownTopicId = false
    }

    enum Context {
        /// No session (epoch -1, or no slots): answer everything, session id 0.
        case sessionless([Target])
        /// A new session (epoch 0): answer everything under this id.
        case created(sessionId: Int32, [Target])
        /// A later fetch of a session: answer only what changed.
        case incremental(sessionId: Int32, [Target])
        case failed(KafkaErrorCode)

        var targets: [Target] {
            switch self {
            case .sessionless(let targets), .created(_, let targets), .incremental(_, let targets): targets
            case .failed: []
            }
        }
    }

    private struct Session {
        /// The epoch the next fetch of this session must carry.
        var nextEpoch: Int32
        var order: [PartitionKey]
        var entries: [PartitionKey: Entry]
        var lastUsed: ContinuousClock.Instant
    }

    let slots: Int
    private let state = Mutex<(sessions: [Int32: Session], lastId: Int32)>(([:], 0))
    /// `edgelog_kafka_fetches_total{session}`: none, new or incremental; made once.
    private let sessionless = Counter(label: "edgelog_kafka_fetches_total", dimensions: [("session", "none")])
    private let created = Counter(label: "edgelog_kafka_fetches_total", dimensions: [("session", "new")])
    private let incremental = Counter(label: "edgelog_kafka_fetches_total", dimensions: [("session", "incremental")])

    init(slots: Int) {
        self.slots = slots
    }

    /// Counts a fetch by the kind of session it ran in.
    func count(_ context: Context) {
        switch context {
        case .sessionless: sessionless.increment()
        case .created: created.increment()
        case .incremental: incremental.increment()
        case .failed: break
        }
    }

    var count: Int { state.withLock { $0.sessions.count } }

    /// What a Fetch with this session id and epoch asks for, given the partitions it names
    /// and the ones it forgets.
    func context(sessionId: Int32, epoch: Int32, requested: [Target], forgotten: [PartitionKey]) -> Context {
        state.withLock { state in
            switch epoch {
            case -1:
                state.sessions[sessionId] = nil
                return .sessionless(requested)
            case 0:
                state.sessions[sessionId] = nil
                guard slots > 0 else { return .sessionless(requested) }
                if state.sessions.count >= slots,
                    let oldest = state.sessions.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key
                {
                    state.sessions[oldest] = nil
                }
                repeat { state.lastId = state.lastId == Int32.max ? 1 : state.lastId + 1 } while state.sessions[state.lastId] != nil
                var session = Session(nextEpoch: 1, order: [], entries: [:], lastUsed: .now)
                for target in requested where !target.unknownTopicId {
                    if session.entries.updateValue(target.entry, forKey: target.key) == nil { session.order.append(target.key) }
                }
                state.sessions[state.lastId] = session
                return .created(sessionId: state.lastId, requested)
            default:
                guard var session = state.sessions[sessionId] else { return .failed(.fetchSessionIdNotFound) }
                guard epoch == session.nextEpoch else { return .failed(.invalidFetchSessionEpoch) }
                for key in forgotten where session.entries.removeValue(forKey: key) != nil {
                    session.order.removeAll { $0 == key }
                }
                var unknown: [Target] = []
                for target in requested {
                    if target.unknownTopicId {
                        unknown.append(target)
                        continue
                    }
                    var entry = target.entry
                    if let held = session.entries[target.key] {
                        entry.sentHighWatermark = held.sentHighWatermark
                        entry.sentLogStartOffset = held.sentLogStartOffset
                    } else {
                        session.order.append(target.key)
                    }
                    session.entries[target.key] = entry
                }
                session.nextEpoch = epoch == Int32.max ? 1 : epoch + 1
                session.lastUsed = .now
                state.sessions[sessionId] = session
                let targets = session.order.map { Target(key: $0, entry: session.entries[$0]!) }
                return .incremental(sessionId: sessionId, targets + unknown)
            }
        }
    }

    /// Notes what a session's answer told the client, so the next incremental answer can leave
    /// out what has not changed since.
    func recordSent(sessionId: Int32, _ sent: [(PartitionKey, highWatermark: Int64, logStartOffset: Int64)]) {
        state.withLock { state in
            guard var session = state.sessions[sessionId] else { return }
            for (key, highWatermark, logStartOffset) in sent {
                session.entries[key]?.sentHighWatermark = highWatermark
                session.entries[key]?.sentLogStartOffset = logStartOffset
            }
            state.sessions[sessionId] = session
        }
    }

    /// Whether an incremental answer must include a partition: it has records or an error, or
    /// its high watermark or log start moved since the client last heard.
    static func changed(_ data: FetchResponse.PartitionData, hasSpan: Bool, since entry: Entry) -> Bool {
        hasSpan || (data.records?.readableBytes ?? 0) > 0 || data.errorCode != 0
            || data.highWatermark != entry.sentHighWatermark || data.logStartOffset != entry.sentLogStartOffset
    }
}
