public import EdgeLogStorage
import NIOCore

extension LogInspector {
    // MARK: Checkpoints

    enum CheckpointRead {
        case missing
        case parsed(Checkpoint)
        case failed(LogProblem)
    }

    static func readCheckpoint(_ path: String) -> CheckpointRead {
        let name = fileName(of: path)
        do throws(StorageError) {
            guard let checkpoint = try Checkpoint.read(from: path) else { return .missing }
            return .parsed(checkpoint)
        } catch .corruptCheckpoint(_, let reason) {
            return .failed(LogProblem(file: name, position: nil, kind: .corruptCheckpoint, message: reason))
        } catch {
            return .failed(LogProblem(file: name, position: nil, kind: .unreadableFile, message: error.description))
        }
    }

    static func checkCheckpoints(directory: String, segments: [SegmentSummary], problems: inout [LogProblem]) {
        let logEnd = segments.last?.nextOffset
        let firstBase = segments.first?.baseOffset

        let recoveryName = PartitionLog.recoveryPointFile
        func recoveryProblem(_ message: String) {
            problems.append(LogProblem(file: recoveryName, position: nil, kind: .recoveryPoint, message: message))
        }
        switch readCheckpoint(directory + "/" + recoveryName) {
        case .missing:
            if !segments.isEmpty { recoveryProblem("missing; an open scans every segment") }
        case .failed(let problem):
            problems.append(problem)
        case .parsed(let point):
            let missing = ["offset", "segment", "position"].filter { point[$0] == nil }
            guard missing.isEmpty, let offset = point["offset"], let base = point["segment"], let position = point["position"] else {
                recoveryProblem("lacks \(missing.joined(separator: ", "))")
                break
            }
            let segmentName = LogSegment.fileName(baseOffset: base, suffix: ".log")
            guard let segment = segments.first(where: { $0.baseOffset == base }) else {
                recoveryProblem("names segment \(segmentName), which is not in the directory")
                break
            }
            if position < 0 || position > segment.fileSize {
                recoveryProblem("position \(position) lies outside \(segmentName), which has \(segment.fileSize) bytes")
            } else if position > segment.validEnd {
                recoveryProblem("position \(position) lies past the last whole batch of \(segmentName), which ends at byte \(segment.validEnd)")
            } else {
                let expectedOffset: Int64?
                if position == segment.validEnd {
                    expectedOffset = segment.nextOffset
                } else if let batch = segment.batch(atOrBefore: position), batch.position == position {
                    expectedOffset = batch.baseOffset
                } else {
                    expectedOffset = nil
                    recoveryProblem("position \(position) of \(segmentName) is not a batch boundary")
                }
                if let expectedOffset, expectedOffset != offset {
                    recoveryProblem("offset \(offset) does not match position \(position) of \(segmentName), where offset \(expectedOffset) starts")
                }
            }
            if let logEnd, offset > logEnd {
                recoveryProblem("offset \(offset) lies past the log end offset \(logEnd)")
            } else if let firstBase, offset < firstBase {
                recoveryProblem("offset \(offset) lies below the first segment's base offset \(firstBase)")
            }
        }

        let startName = PartitionLog.logStartFile
        switch readCheckpoint(directory + "/" + startName) {
        case .missing:
            break
        case .failed(let problem):
            problems.append(problem)
        case .parsed(let checkpoint):
            guard let start = checkpoint["offset"] else {
                problems.append(LogProblem(file: startName, position: nil, kind: .logStartOffset, message: "lacks offset"))
                break
            }
            if start < 0 || start > (logEnd ?? start) {
                problems.append(
                    LogProblem(
                        file: startName, position: nil, kind: .logStartOffset,
                        message: "log start offset \(start) lies past the log end offset \(logEnd.map(String.init) ?? "none")"))
            }
        }
    }

    static func fileName(of path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }
}
