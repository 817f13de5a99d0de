import EdgeLogConnect
import EdgeLogCore
import Foundation
import Hummingbird
import NIOCore

/// The connector API, shaped like Kafka Connect's REST API so that its tools and habits carry
/// over (and behind the same bearer token as the rest):
///
///     GET    /connectors                      names (?expand=status, ?expand=info)
///     POST   /connectors                      {"name": ..., "config": {"connector.class": type, ...}}
///     GET    /connectors/{name}               name, config, tasks, type
///     GET    /connectors/{name}/config        the configuration (secrets masked)
///     PUT    /connectors/{name}/config        create or replace
///     PATCH  /connectors/{name}/config        merge (null removes a key)
///     GET    /connectors/{name}/status        state, error and when, last success, restarts
///     PUT    /connectors/{name}/pause|resume|stop
///     POST   /connectors/{name}/restart       (?onlyFailed=true)
///     DELETE /connectors/{name}               ?offsets=keep|drop (asked for when it has offsets)
///     GET    /connectors/{name}/offsets       DELETE resets, PATCH alters (only when STOPPED)
///     GET    /connector-plugins               the types; .../{type}/config their keys
///     PUT    /connector-plugins/{type}/config/validate
extension HTTPAPI {
    static let maxConnectorBodyBytes = 1 << 20

    func addConnectorRoutes(_ router: Router<BasicRequestContext>, _ runtime: ConnectorRuntime) {
        router.get("connectors") { request, _ in
            let expand = request.uri.queryParameters.getAll("expand")
            return Self.connectors(runtime, expandStatus: expand.contains("status"), expandInfo: expand.contains("info"))
        }
        router.post("connectors") { request, _ in
            struct Body: Decodable {
                var name: String?
                var config: ConnectorConfig?
            }
            let body = try await Self.decode(Body.self, request)
            guard let name = body.name else { throw APIError(.badRequest, "missing_name", "the body needs \"name\"") }
            guard let config = body.config else { throw APIError(.badRequest, "missing_config", "the body needs \"config\"") }
            try Self.connect { _ = try runtime.create(name: name, config: config) }
            return try Self.info(runtime, name, status: .created)
        }
        router.get("connectors/:name") { _, context in try Self.info(runtime, try context.parameters.require("name")) }
        router.get("connectors/:name/config") { _, context in
            let spec = try Self.connect { try runtime.spec(try context.parameters.require("name")) }
            var json = JSONWriter()
            Self.writeConfig(&json, spec)
            return Self.jsonResponse(.ok, json)
        }
        router.put("connectors/:name/config") { request, context in
            let name = try context.parameters.require("name")
            let config = try await Self.decode(ConnectorConfig.self, request)
            let created = try Self.connect { try runtime.put(name: name, config: config) }
            return try Self.info(runtime, name, status: created ? .created : .ok)
        }
        router.patch("connectors/:name/config") { request, context in
            let name = try context.parameters.require("name")
            let changes = try await Self.decode([String: ConnectorConfig.Value?].self, request)
            try Self.connect { try runtime.patch(name: name, changes: changes) }
            return try Self.info(runtime, name)
        }
        router.get("connectors/:name/status") { _, context in
            let status = try Self.connect { try runtime.status(try context.parameters.require("name")) }
            var json = JSONWriter()
            status.write(&json, workerId: runtime.workerId)
            return Self.jsonResponse(.ok, json)
        }
        for verb in ["pause", "resume", "stop"] {
            router.put("connectors/:name/\(verb)") { _, context in
                let name = try context.parameters.require("name")
                try Self.connect {
                    switch verb {
                    case "pause": try runtime.pause(name)
                    case "resume": try runtime.resume(name)
                    default: try runtime.stop(name)
                    }
                }
                return Response(status: .accepted)
            }
        }
        router.post("connectors/:name/restart") { request, context in
            let name = try context.parameters.require("name")
            let onlyFailed = request.uri.queryParameters.get("onlyFailed") == "true"
            let restarted = try Self.connect { try runtime.restart(name, onlyFailed: onlyFailed) }
            if !restarted && !onlyFailed {
                throw APIError(.conflict, "connector_not_running", "connector '\(name)' is paused or stopped; resume it instead")
            }
            return Response(status: .noContent)
        }
        router.delete("connectors/:name") { request, context in
            let name = try context.parameters.require("name")
            let keep: Bool?
            switch request.uri.queryParameters.get("offsets") {
            case nil: keep = nil
            case "keep": keep = true
            case "drop": keep = false
            case let other?: throw APIError(.badRequest, "invalid_parameter", "offsets must be keep or drop, not '\(other)'")
            }
            do { try await runtime.delete(name, keepOffsets: keep) } catch let error as ConnectorRuntimeError { throw Self.apiError(error) }
            return Response(status: .noContent)
        }
        router.get("connectors/:name/offsets") { _, context in
            let offsets = try Self.connect { try runtime.offsets(try context.parameters.require("name")) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            struct Body: Encodable { var offsets: [ConnectorOffset] }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(Body(offsets: offsets)))))
        }
        router.delete("connectors/:name/offsets") { _, context in
            let message = try Self.connect { try runtime.alterOffsets(try context.parameters.require("name"), to: nil) }
            return Self.json(.ok) { $0.field("message", message) }
        }
        router.patch("connectors/:name/offsets") { request, context in
            struct Body: Decodable { var offsets: [ConnectorOffset] }
            let body = try await Self.decode(Body.self, request)
            let message = try Self.connect { try runtime.alterOffsets(try context.parameters.require("name"), to: body.offsets) }
            return Self.json(.ok) { $0.field("message", message) }
        }
        router.get("connector-plugins") { _, _ in
            Self.jsonBody(.ok) { json in
                json.beginArray()
                for type in ConnectorType.allCases {
                    json.beginObject()
                    json.field("class", type.rawValue)
                    json.field("type", type.kind.rawValue)
                    json.field("version", EdgelogVersion.current)
                    json.field("summary", type.summary)
                    json.endObject()
                }
                json.endArray()
            }
        }
        router.get("connector-plugins/:type/config") { _, context in
            let type = try Self.connectorType(try context.parameters.require("type"))
            return Self.jsonBody(.ok) { json in
                json.beginArray()
                for key in type.keys { Self.writeKey(&json, key) }
                json.endArray()
            }
        }
        router.put("connector-plugins/:type/config/validate") { request, context in
            let type = try Self.connectorType(try context.parameters.require("type"))
            var config = try await Self.decode(ConnectorConfig.self, request)
            let name: String
            if case .string(let given)? = config["name"] { name = given } else { name = "validation" }
            config["name"] = nil
            config["connector.class"] = nil
            config["type"] = nil
            return Self.validation(type, name: name, config: config)
        }
    }

    // MARK: Bodies

    static func connectors(_ runtime: ConnectorRuntime, expandStatus: Bool, expandInfo: Bool) -> Response {
        jsonBody(.ok) { json in
            guard expandStatus || expandInfo else {
                json.beginArray()
                for name in runtime.names { json.string(name) }
                json.endArray()
                return
            }
            json.beginObject()
            for status in runtime.statuses() {
                json.key(status.name)
                json.beginObject()
                if expandStatus {
                    json.key("status")
                    status.write(&json, workerId: runtime.workerId)
                }
                if expandInfo, let spec = try? runtime.spec(status.name) {
                    json.key("info")
                    writeInfo(&json, spec)
                }
                json.endObject()
            }
            json.endObject()
        }
    }

    static func info(_ runtime: ConnectorRuntime, _ name: String, status: HTTPResponse.Status = .ok) throws -> Response {
        let spec = try connect { try runtime.spec(name) }
        var json = JSONWriter()
        writeInfo(&json, spec)
        return jsonResponse(status, json)
    }

    static func writeInfo(_ json: inout JSONWriter, _ spec: ConnectorSpec) {
        json.beginObject()
        json.field("name", spec.name)
        json.key("config")
        writeConfig(&json, spec)
        json.key("tasks")
        json.beginArray()
        json.beginObject()
        json.field("connector", spec.name)
        json.field("task", 0)
        json.endObject()
        json.endArray()
        json.field("type", spec.type.kind.rawValue)
        json.endObject()
    }

    /// The configuration as given, with Kafka Connect's `connector.class` and `name`.
    static func writeConfig(_ json: inout JSONWriter, _ spec: ConnectorSpec) {
        var config = spec.config
        config["connector.class"] = .string(spec.type.rawValue)
        config["name"] = .string(spec.name)
        config.write(&json)
    }

    static func writeKey(_ json: inout JSONWriter, _ key: ConnectorType.Key) {
        json.beginObject()
        json.field("name", key.name)
        json.field("type", key.type)
        json.key("required")
        json.bool(key.required)
        json.key("default_value")
        if let value = key.defaultValue { json.string(value) } else { json.null() }
        json.field("documentation", key.documentation)
        json.endObject()
    }

    /// Kafka Connect's validation answer: every key with its errors (the first problem found).
    static func validation(_ type: ConnectorType, name: String, config: ConnectorConfig) -> Response {
        var problem: ConfigError? = nil
        do { _ = try ConnectorType.parse(name: name, type: type, config: config, origin: .api) } catch { problem = error }
        let known = Set(type.keys.map(\.name))
        return json(.ok) { json in
            json.field("name", type.rawValue)
            json.field("error_count", problem == nil ? 0 : 1)
            json.key("groups")
            json.beginArray()
            json.endArray()
            json.key("configs")
            json.beginArray()
            var keys = type.keys.map(\.name)
            if let key = problem?.key, !known.contains(key) { keys.append(key) }
            for name in keys {
                json.beginObject()
                if let definition = type.keys.first(where: { $0.name == name }) {
                    json.key("definition")
                    writeKey(&json, definition)
                }
                json.key("value")
                json.beginObject()
                json.field("name", name)
                json.key("value")
                if ConnectorConfig.secretKeys.contains(name), config[name] != nil {
                    json.string(ConnectorConfig.maskedValue)
                } else if let value = config[name] {
                    value.write(&json, masking: ConnectorConfig.secretKeys)
                } else {
                    json.null()
                }
                json.key("errors")
                json.beginArray()
                if let problem, problem.key == name || (problem.key == nil && name == keys.first) { json.string(problem.message) }
                json.endArray()
                json.endObject()
                json.endObject()
            }
            json.endArray()
        }
    }

    // MARK: Helpers

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxConnectorBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "the body is larger than \(maxConnectorBodyBytes) bytes")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(buffer: body)) } catch let error as DecodingError {
            throw APIError(.badRequest, "invalid_json", Self.describe(error))
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return keys.isEmpty ? "" : " at \(keys)"
        }
        switch error {
        case .dataCorrupted(let context): return "the body is not valid JSON\(path(context)): \(context.debugDescription)"
        case .keyNotFound(let key, let context): return "missing \"\(key.stringValue)\"\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "\(context.debugDescription)\(path(context))"
        @unknown default: return "the body does not decode: \(error)"
        }
    }

    static func connectorType(_ name: String) throws -> ConnectorType {
        guard let type = ConnectorType(rawValue: name) else {
            throw APIError(
                .notFound, "unknown_type",
                "unknown connector type '\(name)'; known: \(ConnectorType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return type
    }

    static func connect<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as ConnectorRuntimeError { throw apiError(error) }
    }

    static func apiError(_ error: ConnectorRuntimeError) -> APIError {
        APIError(HTTPResponse.Status(code: error.status.rawValue), error.code, error.message)
    }

    /// A JSON body that is not an object (an array).
    static func jsonBody(_ status: HTTPResponse.Status, _ body: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter()
        body(&json)
        return jsonResponse(status, json)
    }

    static func jsonResponse(_ status: HTTPResponse.Status, _ json: JSONWriter) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.buffer))
    }
}
