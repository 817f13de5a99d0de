import Crypto
import Foundation

/// The server side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 4616, 5802, 7677), one
/// SaslAuthenticate message at a time, for brokers that check their clients.
public struct SASLServer: Sendable {
    public enum Step: Sendable, Equatable {
        /// Send this and wait for the client's next message.
        case challenge([UInt8])
        /// Authenticated as this user; send the final message (empty for PLAIN).
        case success(user: String, final: [UInt8])
        case failure(String)
    }

    /// Passwords by user name.
    public typealias Users = @Sendable (String) -> String?

    public let mechanism: KafkaSASLCredentials.Mechanism
    private let users: Users
    private let iterations: Int
    private var pending: (user: String, password: String, clientFirstBare: String, serverFirst: String, salt: [UInt8])?

    public init(mechanism: KafkaSASLCredentials.Mechanism, iterations: Int = 4096, users: @escaping Users) {
        self.mechanism = mechanism
        self.iterations = iterations
        self.users = users
    }

    public mutating func step(_ message: [UInt8]) -> Step {
        switch mechanism {
        case .plain:
            let parts = message.split(separator: 0, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return .failure("malformed PLAIN message") }
            let user = String(decoding: parts[1], as: UTF8.self)
            let password = String(decoding: parts[2], as: UTF8.self)
            guard let expected = users(user), Self.constantTimeEqual(Array(expected.utf8), Array(password.utf8)) else {
                return .failure("invalid credentials")
            }
            return .success(user: user, final: [])
        case .scramSHA256, .scramSHA512:
            let text = String(decoding: message, as: UTF8.self)
            guard let pending else { return first(text) }
            return final(text, pending)
        }
    }

    private mutating func first(_ message: String) -> Step {
        guard message.hasPrefix("n,,") else { return .failure("channel binding is not supported") }
        let bare = String(message.dropFirst(3))
        let fields = SASLExchange.attributes(bare)
        guard let name = fields["n"], let nonce = fields["r"], !nonce.isEmpty else { return .failure("malformed client-first message") }
        let user = name.replacingOccurrences(of: "=2C", with: ",").replacingOccurrences(of: "=3D", with: "=")
        // An unknown user gets a normal challenge and fails at the proof, so the exchange does
        // not reveal which user names exist.
        let password = users(user) ?? UUID().uuidString
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let serverNonce = nonce + Data((0..<18).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let serverFirst = "r=\(serverNonce),s=\(Data(salt).base64EncodedString()),i=\(iterations)"
        pending = (users(user) == nil ? "" : user, password, bare, serverFirst, salt)
        return .challenge(Array(serverFirst.utf8))
    }

    private mutating func final(
        _ message: String, _ state: (user: String, password: String, clientFirstBare: String, serverFirst: String, salt: [UInt8])
    ) -> Step {
        pending = nil
        guard let proofRange = message.range(of: ",p=") else { return .failure("malformed client-final message") }
        let withoutProof = String(message[..<proofRange.lowerBound])
        guard let proof = Data(base64Encoded: String(message[proofRange.upperBound...])) else {
            return .failure("malformed client proof")
        }
        let authMessage = Array("\(state.clientFirstBare),\(state.serverFirst),\(withoutProof)".utf8)
        let expected =
            mechanism == .scramSHA512
            ? SASLExchange.scram(SHA512.self, password: state.password, salt: state.salt, iterations: iterations, authMessage: authMessage)
            : SASLExchange.scram(SHA256.self, password: state.password, salt: state.salt, iterations: iterations, authMessage: authMessage)
        guard !state.user.isEmpty, Self.constantTimeEqual([UInt8](proof), expected.proof) else {
            return .failure("invalid credentials")
        }
        return .success(user: state.user, final: Array("v=\(Data(expected.serverSignature).base64EncodedString())".utf8))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
