import EdgeLogStorage
import NIOCore
import EdgeLogCore

/// One response frame as a connection writes it: bytes, and for a fetch the record sets left
/// in the segment files, which a plain TCP connection sends with sendfile (a TLS connection
/// reads them first: the bytes must pass through the encryption).
struct ResponseFrame: Sendable {
    enum Piece: Sendable {
        case bytes(ByteBuffer)
        case stored(StoredSpan)

        var byteCount: Int {
            switch self {
            case .bytes(let buffer): buffer.readableBytes
            case .stored(let span): span.length
            }
        }
    }

    var pieces: [Piece]

    init(_ bytes: ByteBuffer) {
        pieces = [.bytes(bytes)]
    }

    init(pieces: [Piece]) {
        self.pieces = pieces
    }

    /// An empty frame stands for a response that could not be encoded: the connection closes.
    var isEmpty: Bool { pieces.allSatisfy { $0.byteCount == 0 } }

    var byteCount: Int { pieces.reduce(0) { $0 + $1.byteCount } }
}
