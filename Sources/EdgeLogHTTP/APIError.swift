import EdgeLogStorage
public import Hummingbird
import NIOCore
import EdgeLogCore

/// An error answer of the HTTP API: a status, a machine-readable code, a message that says
/// exactly what was wrong, and for JSON syntax errors where.
///
///     {"error": "invalid_json", "message": "expected ',' or '}' in a record, found 'x'",
///      "line": 3, "column": 17, "offset": 52}
public struct APIError: Error, HTTPResponseError {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var position: (line: Int, column: Int, offset: Int)? = nil
    public var retryAfterSeconds: Int? = nil

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var headers: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        json.beginObject()
        json.field("error", code)
        json.field("message", message)
        if let position {
            json.field("line", position.line)
            json.field("column", position.column)
            json.field("offset", position.offset)
        }
        json.endObject()
        return Response(status: status, headers: headers, body: .init(byteBuffer: json.buffer))
    }

    static let insufficientStorage = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")

    static func from(_ error: IngestError) -> APIError {
        switch error {
        case .unknownTopic: return APIError(.notFound, "unknown_topic", error.description)
        case .invalidTopic: return APIError(.badRequest, "invalid_topic", error.description)
        case .unknownPartition: return APIError(.notFound, "unknown_partition", error.description)
        case .recordTooLarge: return APIError(.contentTooLarge, "record_too_large", error.description)
        case .storage(let storage): return from(storage)
        }
    }

    static func from(_ error: StorageError) -> APIError {
        switch error {
        case .diskBudgetExceeded:
            var api = APIError(Self.insufficientStorage, "disk_budget_exceeded", error.description)
            api.retryAfterSeconds = 30
            return api
        case .diskFull:
            var api = APIError(Self.insufficientStorage, "disk_full", error.description)
            api.retryAfterSeconds = 60
            return api
        case .partitionFenced:
            return APIError(.serviceUnavailable, "partition_unavailable", error.description)
        case .closed:
            var api = APIError(.serviceUnavailable, "shutting_down", error.description)
            api.retryAfterSeconds = 5
            return api
        case .unknownTopic: return APIError(.notFound, "unknown_topic", error.description)
        case .unknownPartition: return APIError(.notFound, "unknown_partition", error.description)
        case .offsetOutOfRange: return APIError(.rangeNotSatisfiable, "offset_out_of_range", error.description)
        case .invalidTopicName: return APIError(.badRequest, "invalid_topic", error.description)
        case .topicAlreadyExists: return APIError(.conflict, "topic_exists", error.description)
        case .recordTooLarge: return APIError(.contentTooLarge, "record_too_large", error.description)
        default: return APIError(.internalServerError, "storage_error", error.description)
        }
    }
}
