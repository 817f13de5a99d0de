package import NIOCore

/// A part of the daemon that reports on itself in `/v1/status`: the HTTP API renders the
/// reporters the daemon hands it without knowing what they are, so the API module depends on
/// no source or sink.
package protocol StatusReporter: Sendable {
    /// The key of its section in `/v1/status` ("mqtt", "replication").
    var statusSection: String { get }
    /// Whether `/v1/topics` shows the section too (the sources that fill the topics do).
    var showsInTopicList: Bool { get }
    /// Writes the section's value: one JSON value (an array or an object).
    func writeStatus(_ json: inout JSONWriter)
    /// A fuller document served at `/v1/<statusSection>`, or nil when there is none.
    func detailedStatus() throws -> ByteBuffer?
}

extension StatusReporter {
    package var showsInTopicList: Bool { false }
    package func detailedStatus() throws -> ByteBuffer? { nil }
}
