import EdgeLogStorage
import Logging
import EdgeLogCore

/// The records one connection has read since its last commit, by log topic, in arrival order.
/// Used by that connection's network thread only; `take()` hands the records to the commit.
final class MQTTIngestGroup: @unchecked Sendable {
    /// Log topics in order of first use, and their records (few topics: a linear search).
    private var topics: [String] = []
    private var records: [[Record]] = []
    private(set) var count = 0
    /// Monotonic nanoseconds when the first message of the group was read.
    private(set) var startedNanos: UInt64 = 0

    var isEmpty: Bool { count == 0 }

    func append(_ record: Record, to topic: String) {
        if count == 0 { startedNanos = BlockingCondition.nowNanos() }
        count += 1
        if let index = topics.firstIndex(of: topic) {
            records[index].append(record)
        } else {
            topics.append(topic)
            records.append([record])
        }
    }

    /// The group's records by topic; the group is empty afterwards.
    func take() -> [(topic: String, records: [Record])] {
        defer { removeAll() }
        return Array(zip(topics, records))
    }

    func removeAll() {
        topics.removeAll(keepingCapacity: true)
        records.removeAll(keepingCapacity: true)
        count = 0
    }
}

/// `ack = durable`: a group's commit (see the type's documentation).
extension MQTTIngestService {
    /// Starts committing `group` and returns the commit the network thread waits for; nil
    /// when the group holds nothing to commit (unrouted messages, `$SYS` counters).
    func commit(_ group: MQTTIngestGroup) -> MQTTGroupCommit? {
        guard !group.isEmpty else { return nil }
        let messages = group.count
        let started = group.startedNanos
        let topics = group.take()
        let commit = MQTTGroupCommit()
        Task {
            let outcome = await withTaskGroup(of: MQTTClient.Disposition.self) { tasks in
                for (topic, records) in topics {
                    tasks.addTask { await self.append(records, to: topic) }
                }
                var outcome = MQTTClient.Disposition.acknowledge
                for await disposition in tasks where disposition == .refuse { outcome = .refuse }
                return outcome
            }
            if outcome == .acknowledge {
                groupCount.add(1, ordering: .relaxed)
                groupSizes.record(messages)
                commitDuration.recordNanoseconds(Int64(BlockingCondition.nowNanos() - started))
            }
            commit.finish(outcome)
        }
        return commit
    }

    /// Appends one topic's share of a group. `.refuse` when the broker should deliver it again
    /// (a failure that may pass); records that can never be stored are dropped, counted and
    /// acknowledged.
    private func append(_ records: [Record], to topic: String) async -> MQTTClient.Disposition {
        var records = records
        while !records.isEmpty {
            do throws(IngestError) {
                _ = try await sink.append(topic: topic, records: records)
                countStored(records)
                return .acknowledge
            } catch {
                if dropTooLargeRecord(from: &records, after: error, topic: topic) { continue }
                countFailed(records.count)
                let metadata: Logger.Metadata = [
                    "edgelog.topic": "\(topic)", "edgelog.records": "\(records.count)", "edgelog.error": "\(error)",
                ]
                if Self.isPermanent(error) {
                    logger.info("cannot store the MQTT messages, ever; dropped (acknowledged)", metadata: metadata)
                    reportUnstorable(records, topic: topic, because: "\(error)")
                    return .acknowledge
                }
                logger.info(
                    "cannot store the MQTT messages; not acknowledged, the broker will deliver them again",
                    metadata: metadata)
                return .refuse
            }
        }
        return .acknowledge
    }
}
