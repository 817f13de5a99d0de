@testable import EdgeLogKafka
import Testing

@Suite struct SASLExchangeTests {
    /// The SCRAM-SHA-256 exchange printed in RFC 7677, section 3.
    @Test func scramSHA256MatchesRFC7677() throws {
        var exchange = SASLExchange(
            credentials: KafkaSASLCredentials(mechanism: .scramSHA256, username: "user", password: "pencil"),
            nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: exchange.start(), as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let clientFinal = try #require(try exchange.next(serverMessage: Array(serverFirst.utf8)))
        #expect(String(decoding: clientFinal, as: UTF8.self)
            == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        let serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        #expect(try exchange.next(serverMessage: Array(serverFinal.utf8)) == nil)
        #expect(exchange.isComplete)
    }

    @Test func aForgedServerSignatureIsRejected() throws {
        var exchange = SASLExchange(
            credentials: KafkaSASLCredentials(mechanism: .scramSHA256, username: "user", password: "pencil"),
            nonce: "rOprNGfwEbeRWgbNEkqO")
        _ = exchange.start()
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        _ = try exchange.next(serverMessage: Array(serverFirst.utf8))
        #expect(throws: SASLExchange.Failure.self) {
            try exchange.next(serverMessage: Array("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        }
    }

    @Test func aServerNonceThatDoesNotExtendOursIsRejected() {
        var exchange = SASLExchange(
            credentials: KafkaSASLCredentials(mechanism: .scramSHA512, username: "u", password: "p"), nonce: "abc")
        _ = exchange.start()
        #expect(throws: SASLExchange.Failure.self) {
            try exchange.next(serverMessage: Array("r=zzz,s=c2FsdA==,i=4096".utf8))
        }
    }

    @Test func plainIsOneMessage() throws {
        var exchange = SASLExchange(credentials: KafkaSASLCredentials(mechanism: .plain, username: "edge", password: "s3cret"))
        #expect(exchange.start() == [0] + Array("edge".utf8) + [0] + Array("s3cret".utf8))
        #expect(try exchange.next(serverMessage: []) == nil)
    }

    @Test func usernamesAreEscaped() {
        #expect(SASLExchange.saslName("a=b,c") == "a=3Db=2Cc")
    }

    @Test(arguments: KafkaSASLCredentials.Mechanism.allCases)
    func theServerAcceptsTheRightPasswordOnly(mechanism: KafkaSASLCredentials.Mechanism) {
        func run(username: String, password: String) -> SASLServer.Step {
            var client = SASLExchange(credentials: KafkaSASLCredentials(mechanism: mechanism, username: username, password: password))
            var server = SASLServer(mechanism: mechanism) { $0 == "edge,7" ? "s3cret=" : nil }
            var message = client.start()
            while true {
                let step = server.step(message)
                guard case .challenge(let challenge) = step else {
                    if case .success(_, let final) = step, mechanism != .plain {
                        #expect((try? client.next(serverMessage: final)) == nil && client.isComplete, "the client verifies the server")
                    }
                    return step
                }
                guard let answer = try? client.next(serverMessage: challenge) else { return .failure("client gave up") }
                message = answer
            }
        }
        if case .success(let user, _) = run(username: "edge,7", password: "s3cret=") {
            #expect(user == "edge,7")
        } else {
            Issue.record("the right password failed")
        }
        if case .failure = run(username: "edge,7", password: "wrong") {} else { Issue.record("a wrong password passed") }
        if case .failure = run(username: "nobody", password: "s3cret=") {} else { Issue.record("an unknown user passed") }
    }
}
