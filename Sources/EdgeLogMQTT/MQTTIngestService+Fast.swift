import EdgeLogStorage
import Logging
import EdgeLogCore

/// `ack = fast`: records acknowledged at once and appended from `MQTTRecordQueue` by one task.
extension MQTTIngestService {
    func drain(_ queue: MQTTRecordQueue) async {
        while let batch = await queue.take(maxItems: tuning.fastBatchMaxRecords) {
            var topics: [String] = []
            var groups: [String: [Record]] = [:]
            for item in batch {
                if groups[item.topic] == nil { topics.append(item.topic) }
                groups[item.topic, default: []].append(item.record)
            }
            for topic in topics {
                await appendQueued(groups[topic]!, to: topic, queue: queue)
                fastAckMark?.settle(groups[topic]!.count)  // stored, or given up on and counted
            }
        }
    }

    /// Appends records that were already acknowledged, retrying transient failures until the
    /// queue is closed (then they are lost, and counted as failed).
    private func appendQueued(_ records: [Record], to topic: String, queue: MQTTRecordQueue) async {
        var records = records
        var delayMs = 100
        var failing = false
        while !records.isEmpty {
            do throws(IngestError) {
                _ = try await sink.append(topic: topic, records: records)
                countStored(records)
                if failing { logger.info("appending MQTT records again", metadata: ["edgelog.topic": "\(topic)"]) }
                return
            } catch {
                if dropTooLargeRecord(from: &records, after: error, topic: topic) { continue }
                let metadata: Logger.Metadata = ["edgelog.topic": "\(topic)", "edgelog.error": "\(error)"]
                if Self.isPermanent(error) || queue.isClosed {
                    countFailed(records.count)
                    logger.info("cannot store \(records.count) acknowledged MQTT records; lost", metadata: metadata)
                    reportUnstorable(records, topic: topic, because: queue.isClosed ? "the daemon stopped while the log refused them (\(error))" : "\(error)")
                    return
                }
                if !failing {
                    logger.info("cannot store MQTT records; retrying while the queue fills up", metadata: metadata)
                    failing = true
                }
                try? await Task.sleep(for: .milliseconds(delayMs))
                delayMs = min(delayMs * 2, 5_000)
            }
        }
    }

    /// At start: a busy spell the last run did not end means it died with acknowledged
    /// records not yet in the log (at most the queue plus the batch being appended).
    func reportFastAckCrash() {
        guard let mark = fastAckMark else { return }
        if let spell = mark.previousBusySpell() {
            let bound = Int64(tuning.fastQueueCapacity + tuning.fastBatchMaxRecords)
            loss?.record(
                LossMarker(
                    reason: .mqttFastAckCrash, countAtMost: bound, fromMs: spell.sinceMs > 0 ? spell.sinceMs : nil,
                    toMs: spell.updatedMs > 0 ? spell.updatedMs + MQTTFastAckMark.refreshMs : nil,
                    detail: "the last run of edgelog ended without a clean stop while MQTT messages from broker '\(broker.name)' acknowledged with ack = \"fast\" were not yet in the log (\(spell.inFlight) in flight when last noted); they are lost"))
        }
        mark.reset()
    }
}
