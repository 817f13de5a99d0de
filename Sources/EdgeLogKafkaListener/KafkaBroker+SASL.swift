import EdgeLogKafka
import NIOCore
import EdgeLogCore

extension KafkaBroker {
    var requiresAuthentication: Bool { !settings.users.isEmpty }

    func saslHandshake(_ request: SaslHandshakeRequest, session: KafkaSession) -> SaslHandshakeResponse {
        let offered = requiresAuthentication ? settings.saslMechanisms.map(\.rawValue) : []
        guard requiresAuthentication, let mechanism = KafkaSASLCredentials.Mechanism(rawValue: request.mechanism),
            settings.saslMechanisms.contains(mechanism)
        else {
            return SaslHandshakeResponse(errorCode: KafkaErrorCode.unsupportedSaslMechanism.rawValue, mechanisms: offered)
        }
        let users = settings.users
        session.sasl = SASLServer(mechanism: mechanism) { users[$0] }
        return SaslHandshakeResponse(mechanisms: offered)
    }

    func saslAuthenticate(_ request: SaslAuthenticateRequest, session: KafkaSession) -> SaslAuthenticateResponse {
        guard var exchange = session.sasl else {
            return SaslAuthenticateResponse(errorCode: KafkaErrorCode.illegalSaslState.rawValue, errorMessage: "SaslHandshake first")
        }
        let step = exchange.step(Array(request.authBytes.readableBytesView))
        session.sasl = exchange
        switch step {
        case .challenge(let bytes):
            return SaslAuthenticateResponse(authBytes: ByteBuffer(bytes: bytes))
        case .success(let user, let final):
            session.sasl = nil
            session.authenticatedUser = user
            logger.info("Kafka client authenticated", metadata: ["edgelog.peer": "\(session.peer)", "edgelog.user": "\(user)"])
            return SaslAuthenticateResponse(authBytes: ByteBuffer(bytes: final))
        case .failure(let reason):
            session.sasl = nil
            session.closeAfterAnswer = true
            logger.notice("Kafka client failed to authenticate", metadata: ["edgelog.peer": "\(session.peer)", "edgelog.reason": "\(reason)"])
            return SaslAuthenticateResponse(
                errorCode: KafkaErrorCode.saslAuthenticationFailed.rawValue,
                errorMessage: "Authentication failed: \(reason) (mechanism \(exchange.mechanism.rawValue))")
        }
    }
}
