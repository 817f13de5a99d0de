/// What went wrong talking to a Kafka broker, in words an operator can act on.
public enum KafkaClientError: Error, Sendable, CustomStringConvertible {
    case connectFailed(broker: String, reason: String)
    case tlsFailed(broker: String, reason: String)
    case connectionClosed(broker: String)
    case requestTimedOut(broker: String, api: String, after: Duration)
    case frameTooLarge(broker: String, size: Int, limit: Int)
    case malformedResponse(broker: String, api: String, reason: String)
    case unsupportedAPI(broker: String, api: String, ours: ClosedRange<Int16>, theirs: ClosedRange<Int16>?)
    case authenticationFailed(broker: String, mechanism: String, reason: String)
    case brokerError(broker: String, api: String, code: KafkaErrorCode, message: String?)
    case noBrokerReachable(tried: [String], lastError: String)
    /// A request we could not encode (a value the negotiated version cannot carry).
    case encodingFailed(api: String, reason: String)

    public var description: String {
        switch self {
        case .connectFailed(let broker, let reason):
            "cannot connect to \(broker): \(reason)"
        case .tlsFailed(let broker, let reason):
            "TLS handshake with \(broker) failed: \(reason)"
        case .connectionClosed(let broker):
            "\(broker) closed the connection"
        case .requestTimedOut(let broker, let api, let after):
            "\(api) to \(broker) got no answer within \(after)"
        case .frameTooLarge(let broker, let size, let limit):
            "\(broker) sent a \(size)-byte frame, over the \(limit)-byte limit"
        case .malformedResponse(let broker, let api, let reason):
            "\(broker) sent a malformed \(api) response: \(reason)"
        case .unsupportedAPI(let broker, let api, let ours, let theirs):
            "\(broker) does not speak \(api) in a version we do (ours \(ours), theirs \(theirs.map { "\($0)" } ?? "none"))"
        case .authenticationFailed(let broker, let mechanism, let reason):
            "SASL \(mechanism) authentication with \(broker) failed: \(reason)"
        case .brokerError(let broker, let api, let code, let message):
            "\(broker) answered \(api) with \(code)\(message.map { ": \($0)" } ?? "")"
        case .encodingFailed(let api, let reason):
            "cannot encode \(api): \(reason)"
        case .noBrokerReachable(let tried, let lastError):
            "no bootstrap broker reachable (tried \(tried.joined(separator: ", "))); last error: \(lastError)"
        }
    }

    /// Whether the connection this came from is unusable now.
    public var isConnectionLevel: Bool {
        switch self {
        case .connectFailed, .tlsFailed, .connectionClosed, .requestTimedOut, .frameTooLarge, .malformedResponse,
             .noBrokerReachable:
            true
        case .unsupportedAPI, .authenticationFailed, .brokerError, .encodingFailed:
            false
        }
    }
}
