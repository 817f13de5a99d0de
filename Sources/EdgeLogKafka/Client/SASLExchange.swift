import Crypto
import Foundation

/// The client side of a SASL exchange, one message at a time: PLAIN (RFC 4616) and
/// SCRAM-SHA-256/512 (RFC 5802/7677), as Kafka brokers run them through SaslAuthenticate.
struct SASLExchange {
    enum Failure: Error, CustomStringConvertible {
        case protocolViolation(String)
        case serverRejected(String)
        case serverSignatureMismatch

        var description: String {
            switch self {
            case .protocolViolation(let what): "unexpected server message: \(what)"
            case .serverRejected(let error): "server rejected the credentials: \(error)"
            case .serverSignatureMismatch: "the server's SCRAM signature is wrong (not the server we think)"
            }
        }
    }

    private enum State {
        case initial
        case sentClientFirst(nonce: String, clientFirstBare: String)
        case sentClientFinal(expectedServerSignature: [UInt8])
        case done
    }

    let credentials: KafkaSASLCredentials
    private var state = State.initial
    private let nonceOverride: String?

    init(credentials: KafkaSASLCredentials, nonce: String? = nil) {
        self.credentials = credentials
        self.nonceOverride = nonce
    }

    /// The first client message.
    mutating func start() -> [UInt8] {
        switch credentials.mechanism {
        case .plain:
            state = .done
            return [0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8)
        case .scramSHA256, .scramSHA512:
            let nonce = nonceOverride ?? Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            let bare = "n=\(Self.saslName(credentials.username)),r=\(nonce)"
            state = .sentClientFirst(nonce: nonce, clientFirstBare: bare)
            return Array("n,,\(bare)".utf8)
        }
    }

    /// The answer to a server message, or nil when the exchange is complete.
    mutating func next(serverMessage: [UInt8]) throws(Failure) -> [UInt8]? {
        switch state {
        case .initial:
            throw .protocolViolation("exchange not started")
        case .done:
            return nil
        case .sentClientFirst(let nonce, let clientFirstBare):
            let serverFirst = String(decoding: serverMessage, as: UTF8.self)
            let fields = Self.attributes(serverFirst)
            if let error = fields["e"] { throw .serverRejected(error) }
            guard let serverNonce = fields["r"], serverNonce.hasPrefix(nonce),
                let saltText = fields["s"], let salt = Data(base64Encoded: saltText),
                let iterationText = fields["i"], let iterations = Int(iterationText), iterations > 0
            else { throw .protocolViolation(serverFirst) }
            let withoutProof = "c=biws,r=\(serverNonce)"
            let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
            let (proof, serverSignature) =
                switch credentials.mechanism {
                case .scramSHA512: Self.scram(SHA512.self, password: credentials.password, salt: [UInt8](salt), iterations: iterations, authMessage: authMessage)
                default: Self.scram(SHA256.self, password: credentials.password, salt: [UInt8](salt), iterations: iterations, authMessage: authMessage)
                }
            state = .sentClientFinal(expectedServerSignature: serverSignature)
            return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
        case .sentClientFinal(let expected):
            let serverFinal = String(decoding: serverMessage, as: UTF8.self)
            let fields = Self.attributes(serverFinal)
            if let error = fields["e"] { throw .serverRejected(error) }
            guard let verifier = fields["v"], let signature = Data(base64Encoded: verifier) else {
                throw .protocolViolation(serverFinal)
            }
            guard [UInt8](signature) == expected else { throw .serverSignatureMismatch }
            state = .done
            return nil
        }
    }

    var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Client proof and the server signature to expect, per RFC 5802 section 3.
    static func scram<H: HashFunction>(
        _: H.Type, password: String, salt: [UInt8], iterations: Int, authMessage: [UInt8]
    ) -> (proof: [UInt8], serverSignature: [UInt8]) {
        let salted = pbkdf2(H.self, password: Array(password.utf8), salt: salt, iterations: iterations)
        let saltedKey = SymmetricKey(data: salted)
        let clientKey = Array(HMAC<H>.authenticationCode(for: Array("Client Key".utf8), using: saltedKey))
        let storedKey = Array(H.hash(data: clientKey))
        let clientSignature = Array(HMAC<H>.authenticationCode(for: authMessage, using: SymmetricKey(data: storedKey)))
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Array(HMAC<H>.authenticationCode(for: Array("Server Key".utf8), using: saltedKey))
        let serverSignature = Array(HMAC<H>.authenticationCode(for: authMessage, using: SymmetricKey(data: serverKey)))
        return (proof, serverSignature)
    }

    /// Hi() of RFC 5802: PBKDF2 with HMAC-H, one block (the hash's own length).
    static func pbkdf2<H: HashFunction>(_: H.Type, password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = Array(HMAC<H>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<iterations {
            block = Array(HMAC<H>.authenticationCode(for: block, using: key))
            for index in result.indices { result[index] ^= block[index] }
        }
        return result
    }

    /// RFC 5802's saslname: "=" and "," escaped.
    static func saslName(_ name: String) -> String {
        name.replacingOccurrences(of: "=", with: "=3D").replacingOccurrences(of: ",", with: "=2C")
    }

    /// The "key=value" attributes of a SCRAM message (shared with the server side).
    static func attributes(_ message: String) -> [String: String] {
        var fields: [String: String] = [:]
        for part in message.split(separator: ",") {
            guard let equals = part.firstIndex(of: "=") else { continue }
            fields[String(part[..<equals])] = String(part[part.index(after: equals)...])
        }
        return fields
    }
}
