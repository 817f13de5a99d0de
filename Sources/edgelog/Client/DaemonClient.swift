import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Options every command that talks to a running daemon shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "The daemon's HTTP API (env EDGELOG_SERVER).")
    var server = ProcessInfo.processInfo.environment["EDGELOG_SERVER"] ?? "http://127.0.0.1:8080"

    @Option(help: "Bearer token (env EDGELOG_HTTP_TOKEN).")
    var token = ProcessInfo.processInfo.environment["EDGELOG_HTTP_TOKEN"] ?? ""
}

/// A small client of the daemon's HTTP API for the CLI.
struct DaemonClient {
    let options: ServerOptions
    let http = HTTPClient(eventLoopGroupProvider: .singleton)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    /// Sends a request and returns the JSON answer; an error status becomes a Failure with the
    /// daemon's message.
    func call(_ method: HTTPMethod, _ path: String, contentType: String? = nil, body: ByteBuffer? = nil) async throws -> Any {
        var request = HTTPClientRequest(url: options.server + path)
        request.method = method
        if !options.token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(options.token)") }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(body) }
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: .seconds(60)) } catch {
            throw Failure(description: "cannot reach edgelog at \(options.server): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 256 << 20)
        let json = bytes.readableBytes == 0 ? [String: Any]() : try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))
        guard (200..<300).contains(response.status.code) else {
            let message = (json as? [String: Any])?["message"] as? String ?? "HTTP \(response.status.code)"
            throw Failure(description: "\(response.status.code) \(response.status.reasonPhrase): \(message)")
        }
        return json
    }
}

extension Dictionary where Key == String, Value == Any {
    func int(_ key: String) -> Int64 { (self[key] as? NSNumber)?.int64Value ?? 0 }
}
