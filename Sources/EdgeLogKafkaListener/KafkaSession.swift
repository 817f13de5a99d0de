import EdgeLogKafka
import EdgeLogCore

/// What the broker knows about one client connection: whether (and as whom) it has
/// authenticated, and the SASL exchange in progress. Used only by that connection's task.
package final class KafkaSession {
    var authenticatedUser: String?
    var sasl: SASLServer?
    /// Set after a failed authentication: the answer is sent, then the connection closes.
    var closeAfterAnswer = false
    let peer: String
    /// Whether fetched record sets may stay in the segment files and go out with sendfile
    /// (plain TCP); a TLS connection needs them in memory to encrypt them.
    let sendsFiles: Bool

    init(peer: String, sendsFiles: Bool = false) {
        self.peer = peer
        self.sendsFiles = sendsFiles
    }
}
