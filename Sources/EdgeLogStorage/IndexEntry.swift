public import NIOCore

/// A fixed-size entry of a segment's sparse index files.
public protocol IndexEntry: Sendable, Equatable {
    /// Bytes per entry on disk.
    static var size: Int { get }
    /// The value entries are sorted by, for the floor lookup.
    var key: Int64 { get }
    func write(into buffer: inout ByteBuffer, baseOffset: Int64)
    init?(from buffer: ByteBuffer, at index: Int, baseOffset: Int64)
}

/// An entry of the `.index` file: a batch at `offset` starts at byte `position` of the
/// segment. On disk 8 bytes: offset relative to the segment's base (UInt32), position (UInt32),
/// as in Kafka's OffsetIndex.
public struct OffsetIndexEntry: IndexEntry {
    public static let size = 8
    public var offset: Int64
    public var position: Int64
    public var key: Int64 { offset }

    public init(offset: Int64, position: Int64) {
        self.offset = offset
        self.position = position
    }

    public func write(into buffer: inout ByteBuffer, baseOffset: Int64) {
        buffer.writeInteger(UInt32(truncatingIfNeeded: offset - baseOffset))
        buffer.writeInteger(UInt32(truncatingIfNeeded: position))
    }

    public init?(from buffer: ByteBuffer, at index: Int, baseOffset: Int64) {
        guard let relative = buffer.getInteger(at: index, as: UInt32.self),
            let position = buffer.getInteger(at: index + 4, as: UInt32.self)
        else { return nil }
        self.init(offset: baseOffset + Int64(relative), position: Int64(position))
    }
}

/// An entry of the `.timeindex` file: every record up to and including `offset` has a
/// timestamp of at most `timestamp`. On disk 12 bytes: timestamp (Int64), offset relative to the
/// segment's base (UInt32), as in Kafka's TimeIndex.
public struct TimeIndexEntry: IndexEntry {
    public static let size = 12
    public var timestamp: Int64
    public var offset: Int64
    public var key: Int64 { timestamp }

    public init(timestamp: Int64, offset: Int64) {
        self.timestamp = timestamp
        self.offset = offset
    }

    public func write(into buffer: inout ByteBuffer, baseOffset: Int64) {
        buffer.writeInteger(timestamp)
        buffer.writeInteger(UInt32(truncatingIfNeeded: offset - baseOffset))
    }

    public init?(from buffer: ByteBuffer, at index: Int, baseOffset: Int64) {
        guard let timestamp = buffer.getInteger(at: index, as: Int64.self),
            let relative = buffer.getInteger(at: index + 8, as: UInt32.self)
        else { return nil }
        self.init(timestamp: timestamp, offset: baseOffset + Int64(relative))
    }
}

extension Array {
    /// Index of the last element whose key is at most `key`, for arrays sorted by that key
    /// (Kafka's "largest lower bound" lookup); nil when every key is larger.
    package func floorIndex(_ key: Int64, by keyOf: (Element) -> Int64) -> Int? {
        var low = 0
        var high = count - 1
        var found: Int? = nil
        while low <= high {
            let middle = (low + high) / 2
            if keyOf(self[middle]) <= key {
                found = middle
                low = middle + 1
            } else {
                high = middle - 1
            }
        }
        return found
    }
}

extension Array where Element: IndexEntry {
    /// The last entry whose key is at most `key`, or nil.
    public func floor(_ key: Int64) -> Element? {
        floorIndex(key, by: \.key).map { self[$0] }
    }

    /// The last entry whose key is below `key`, or nil.
    public func lastBelow(_ key: Int64) -> Element? {
        key == .min ? nil : floor(key - 1)
    }
}
