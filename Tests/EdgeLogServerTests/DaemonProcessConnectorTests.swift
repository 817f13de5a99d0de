import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Connectors managed at run time through the Kafka Connect-shaped API, against the real
/// daemon and a real mosquitto: create, pause, resume, reconfigure, restart the daemon,
/// delete, while data flows; a connector whose broker is down; and bad requests.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct DaemonProcessConnectorTests {
    static let topicConfig = """
        [[topics]]
        name = "sensors"
        partitions = 1
        """

    /// An mqtt-source body as Kafka Connect's tools send it: every value a string but routes.
    static func mqttConnector(_ name: String, broker: MQTTTestBroker, clientId: String) -> String {
        """
        {"name": "\(name)", "config": {"connector.class": "mqtt-source", "port": "\(broker.port)",
         "client_id": "\(clientId)", "keepalive_seconds": "10",
         "routes": [{"filter": "sensors/{device}/#", "topic": "sensors", "key": "{device}"}]}}
        """
    }

    static func json(_ body: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
    }

    static func state(_ daemon: DaemonProcess, _ name: String) async throws -> (String, [String: Any]) {
        let (status, body) = try await daemon.request(.GET, "/connectors/\(name)/status")
        guard status == 200 else { return ("HTTP \(status)", [:]) }
        let document = try json(body)
        return ((document["connector"] as? [String: Any])?["state"] as? String ?? "?", document)
    }

    static func waitForState(_ daemon: DaemonProcess, _ name: String, _ wanted: String) async throws {
        var last = ""
        try await mqttEventually("connector \(name) \(wanted), last \(last)") {
            last = try await state(daemon, name).0
            return last == wanted
        }
    }

    @Test func connectorsCreatedPausedReconfiguredAndDeletedAtRunTimeLoseNothing() async throws {
        let broker = try MQTTTestBroker(persistence: true)
        let daemon = try DaemonProcess(extraConfig: Self.topicConfig)
        defer { daemon.remove() }
        try await daemon.start()
        let clientId = "edgelog-connect-\(broker.port)"

        let (plugins, pluginList) = try await daemon.request(.GET, "/connector-plugins")
        #expect(plugins == 200)
        for type in ["mqtt-source", "http-source", "upstream-sink"] { #expect(pluginList.contains("\"class\":\"\(type)\"")) }
        #expect(try await daemon.request(.GET, "/connectors").1 == #"["http"]"#, "the [http] endpoint is a connector too")

        // Create: Kafka Connect's body, values as strings.
        let (created, createdBody) = try await daemon.request(
            .POST, "/connectors", contentType: "application/json", body: Self.mqttConnector("plant", broker: broker, clientId: clientId))
        #expect(created == 201, "\(createdBody)")
        #expect(createdBody.contains(#""connector.class":"mqtt-source""#))
        try await Self.waitForState(daemon, "plant", "RUNNING")
        try await mqttEventually("the subscription") { broker.log.contains("Sending SUBACK to \(clientId)") }
        try broker.publish("sensors/d1/t", "m1")
        try await mqttEventually("m1") { try await daemon.recordValues("sensors") == ["m1"] }

        // Pause: the connection ends and the broker keeps what comes for the session.
        #expect(try await daemon.request(.PUT, "/connectors/plant/pause").0 == 202)
        try await Self.waitForState(daemon, "plant", "PAUSED")
        try await mqttEventually("the disconnect") { broker.log.contains("Client \(clientId) disconnected") }
        try broker.publish("sensors/d1/t", "m2")
        #expect(try await daemon.recordValues("sensors") == ["m1"], "nothing taken while paused")
        #expect(try await daemon.request(.PUT, "/connectors/plant/resume").0 == 202)
        try await Self.waitForState(daemon, "plant", "RUNNING")
        try await mqttEventually("m2 after the resume") { try await daemon.recordValues("sensors") == ["m1", "m2"] }

        // Reconfigure while data flows: a new keepalive restarts the connection.
        let (patched, patchedBody) = try await daemon.request(
            .PATCH, "/connectors/plant/config", contentType: "application/json", body: #"{"keepalive_seconds": 15}"#)
        #expect(patched == 200, "\(patchedBody)")
        #expect(patchedBody.contains(#""keepalive_seconds":15"#))
        try await mqttEventually("the reconnect with the new keepalive") { broker.log.contains("(p5, c0, k15)") }
        try broker.publish("sensors/d1/t", "m3")
        try await mqttEventually("m3") { try await daemon.recordValues("sensors") == ["m1", "m2", "m3"] }

        // A paused run-time connector is still there, and still paused, after a restart.
        #expect(try await daemon.request(.PUT, "/connectors/plant/pause").0 == 202)
        try await Self.waitForState(daemon, "plant", "PAUSED")
        #expect(try await daemon.stop() == 0)
        try await daemon.start()
        #expect(try await daemon.request(.GET, "/connectors").1 == #"["http","plant"]"#)
        try await Self.waitForState(daemon, "plant", "PAUSED")
        try broker.publish("sensors/d1/t", "m4")
        #expect(try await daemon.request(.PUT, "/connectors/plant/resume").0 == 202)
        try await mqttEventually("m4") { try await daemon.recordValues("sensors") == ["m1", "m2", "m3", "m4"] }
        try await Self.waitForState(daemon, "plant", "RUNNING")
        let (_, status) = try await Self.state(daemon, "plant")
        #expect((status["metrics"] as? [String: Any])?["records_in"] as? Int == 1, "this run stored m4: \(status)")
        // The same, per connector, in /metrics.
        let metrics = try await daemon.request(.GET, "/metrics").1.split(separator: "\n")
        #expect(metrics.contains { $0.hasPrefix("edgelog_connector_records{") && $0.contains(#"connector="plant""#) && $0.contains(#"direction="in""#) && $0.hasSuffix(" 1.0") })
        #expect(metrics.contains { $0.hasPrefix("edgelog_connector_state{") && $0.contains(#"connector="plant""#) && $0.contains(#"state="RUNNING""#) && $0.hasSuffix(" 1.0") })

        // Delete: the position is the broker's session, so the API asks whether to keep it.
        let undecided = try await daemon.request(.DELETE, "/connectors/plant")
        #expect(undecided.0 == 409 && undecided.1.contains("offsets_decision_needed"), "\(undecided.1)")
        #expect(try await daemon.request(.DELETE, "/connectors/plant?offsets=keep").0 == 204)
        #expect(try await daemon.request(.GET, "/connectors/plant/status").0 == 404)
        #expect(try await daemon.request(.GET, "/connectors").1 == #"["http"]"#)
        // Kept: what came meanwhile waits in the session for a connector with the client id.
        try broker.publish("sensors/d1/t", "m5")
        let recreate = Self.mqttConnector("plant", broker: broker, clientId: clientId)
        #expect(try await daemon.request(.POST, "/connectors", contentType: "application/json", body: recreate).0 == 201)
        try await mqttEventually("m5 from the kept session") {
            try await daemon.recordValues("sensors") == ["m1", "m2", "m3", "m4", "m5"]
        }
        // Dropped: the broker forgets the session (a clean-start connection under its id), so
        // m6 is queued for no one and the next connector starts afresh with m7.
        #expect(try await daemon.request(.DELETE, "/connectors/plant?offsets=drop").0 == 204)
        #expect(broker.log.contains("as \(clientId) (p5, c1"), "the session dropped with a clean start")
        try broker.publish("sensors/d1/t", "m6")
        // The route's subscription (the $SYS counters have SUBACKs of their own).
        func subacks() -> Int { broker.log.components(separatedBy: "\(clientId) 1 sensors/+/#").count - 1 }
        let subscribedBefore = subacks()
        #expect(try await daemon.request(.POST, "/connectors", contentType: "application/json", body: recreate).0 == 201)
        try await mqttEventually("the new subscription") { subacks() == subscribedBefore + 1 }
        try broker.publish("sensors/d1/t", "m7")
        try await mqttEventually("m7") { try await daemon.recordValues("sensors").last == "m7" }
        #expect(try await daemon.recordValues("sensors") == ["m1", "m2", "m3", "m4", "m5", "m7"], "m6 went with the session")
    }

    @Test func aConnectorWhoseBrokerIsDownReportsFailedRetriesAndRecoversAlone() async throws {
        let broker = try MQTTTestBroker(persistence: true, start: false)
        let daemon = try DaemonProcess(extraConfig: Self.topicConfig)
        defer { daemon.remove() }
        try await daemon.start()
        let clientId = "edgelog-down-\(broker.port)"
        #expect(try await daemon.request(
            .POST, "/connectors", contentType: "application/json", body: Self.mqttConnector("far", broker: broker, clientId: clientId)).0 == 201)
        // Never RUNNING while it cannot connect: FAILED, with the reason and the retries.
        try await Self.waitForState(daemon, "far", "FAILED")
        try await mqttEventually("a second attempt") {
            let (_, status) = try await Self.state(daemon, "far")
            return (status["retries"] as? Int ?? 0) >= 2
        }
        let (_, failed) = try await Self.state(daemon, "far")
        let error = failed["last_error"] as? [String: Any]
        #expect((error?["message"] as? String)?.contains("Connection refused") == true, "\(failed)")
        #expect(error?["at_ms"] is Int)
        // The other connectors and the daemon carry on.
        let (produced, _) = try await daemon.request(
            .POST, "/v1/topics/sensors/records", contentType: "application/json", body: #"{"records":[{"value":"by http"}]}"#)
        #expect(produced == 200)

        try broker.start()
        try await Self.waitForState(daemon, "far", "RUNNING")
        try broker.publish("sensors/d9/t", "after the outage")
        var values: [String] = []
        try await mqttEventually("the message, have \(values)") {
            values = try await daemon.recordValues("sensors")
            // The HTTP record's value is stored as the JSON it was (a string, with its quotes).
            return values == [#""by http""#, "after the outage"]
        }
        let (_, recovered) = try await Self.state(daemon, "far")
        #expect(recovered["last_success_at_ms"] is Int && recovered["retries"] as? Int == 0)
    }

    @Test func badRequestsGetPreciseErrorsAndChangeNothing() async throws {
        let broker = try MQTTTestBroker()
        let daemon = try DaemonProcess(extraConfig: Self.topicConfig)
        defer { daemon.remove() }
        try await daemon.start()
        func post(_ body: String) async throws -> (Int, String) {
            try await daemon.request(.POST, "/connectors", contentType: "application/json", body: body)
        }
        let unknownType = try await post(#"{"name": "x", "config": {"connector.class": "ftp-source"}}"#)
        #expect(unknownType.0 == 400 && unknownType.1.contains("unknown_type") && unknownType.1.contains("ftp-source"))
        let unknownKey = try await post(
            #"{"name": "x", "config": {"connector.class": "http-source", "topic": "sensors", "colour": "red"}}"#)
        #expect(unknownKey.0 == 400 && unknownKey.1.contains("invalid_config") && unknownKey.1.contains("colour"), "\(unknownKey.1)")
        let wrongType = try await post(
            #"{"name": "x", "config": {"connector.class": "mqtt-source", "port": "eighteen", "routes": [{"filter": "a/#", "topic": "sensors"}]}}"#)
        #expect(wrongType.0 == 400 && wrongType.1.contains("'port'") && wrongType.1.contains("expected an integer"), "\(wrongType.1)")
        let badName = try await post(#"{"name": "../etc", "config": {"connector.class": "http-source", "topic": "sensors"}}"#)
        #expect(badName.0 == 400 && badName.1.contains("connector name"), "\(badName.1)")
        let badJSON = try await post(#"{"name": "x", "config": "#)
        #expect(badJSON.0 == 400 && badJSON.1.contains("invalid_json"))
        let duplicate = try await post(#"{"name": "http", "config": {"connector.class": "http-source", "topic": "sensors"}}"#)
        #expect(duplicate.0 == 409 && duplicate.1.contains("connector_exists"))
        // The file's connector is changed in the file, not through the API.
        let fileOwned = try await daemon.request(.DELETE, "/connectors/http")
        #expect(fileOwned.0 == 409 && fileOwned.1.contains("defined_in_file"))
        #expect(try await daemon.request(.GET, "/connectors").1 == #"["http"]"#, "nothing was created or deleted")

        // The types' keys, and Kafka Connect's validation answer naming the key at fault.
        let keys = try await daemon.request(.GET, "/connector-plugins/mqtt-source/config")
        #expect(keys.0 == 200 && keys.1.contains(#""name":"client_id""#) && keys.1.contains(#""name":"routes""#))
        let validated = try await daemon.request(
            .PUT, "/connector-plugins/mqtt-source/config/validate", contentType: "application/json",
            body: #"{"connector.class": "mqtt-source", "port": "eighteen", "password": "p", "routes": [{"filter": "a/#", "topic": "sensors"}]}"#)
        let validation = try Self.json(validated.1)
        #expect(validated.0 == 200 && validation["error_count"] as? Int == 1)
        let configs = validation["configs"] as? [[String: Any]] ?? []
        let port = configs.first { ($0["value"] as? [String: Any])?["name"] as? String == "port" }?["value"] as? [String: Any]
        #expect((port?["errors"] as? [String])?.first?.contains("expected an integer") == true, "\(validated.1)")
        #expect(!validated.1.contains(#""p""#), "the password is not shown back")
        #expect(try await daemon.request(.PUT, "/connector-plugins/ftp-source/config/validate", contentType: "application/json", body: "{}").0 == 404)

        // An http-source at run time: its endpoint, paused (503) and resumed.
        #expect(try await post(#"{"name": "webhook", "config": {"connector.class": "http-source", "topic": "sensors"}}"#).0 == 201)
        try await Self.waitForState(daemon, "webhook", "RUNNING")
        #expect(try await daemon.request(.POST, "/v1/ingest/webhook", contentType: "application/json", body: #"{"records":[{"value":"w1"}]}"#).0 == 200)
        #expect(try await daemon.request(.PUT, "/connectors/webhook/pause").0 == 202)
        try await Self.waitForState(daemon, "webhook", "PAUSED")
        let paused = try await daemon.request(.POST, "/v1/ingest/webhook", contentType: "application/json", body: #"{"records":[{"value":"w2"}]}"#)
        #expect(paused.0 == 503 && paused.1.contains("connector_not_running"))
        // Offsets change only when stopped (KIP-875), and an http-source has none.
        let running = try await daemon.request(.DELETE, "/connectors/webhook/offsets")
        #expect(running.0 == 409 && running.1.contains("connector_not_stopped"), "\(running.1)")
        let values = try await daemon.recordValues("sensors")
        #expect(values == [#""w1""#], "w1 as the JSON string it was, and not w2")
        _ = broker
    }

    /// SIGHUP applies the file's connector changes: a new one starts, a changed one takes its
    /// new settings, a removed one stops. The file's connectors are changed in the file only.
    @Test func reloadingTheFileAddsChangesAndRemovesItsConnectors() async throws {
        func config(_ connectors: String) -> String { Self.topicConfig + "\n[[topics]]\nname = \"other\"\npartitions = 1\n" + connectors }
        let hookA = "\n[[connectors]]\nname = \"hook-a\"\ntype = \"http-source\"\ntopic = \"sensors\"\n"
        let daemon = try DaemonProcess(extraConfig: config(hookA))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.waitForState(daemon, "hook-a", "RUNNING")
        func ingest(_ name: String, _ value: String) async throws -> Int {
            try await daemon.request(.POST, "/v1/ingest/\(name)", contentType: "application/json", body: #"{"records":[{"value":"\#(value)"}]}"#).0
        }
        #expect(try await ingest("hook-a", "a1") == 200)
        // One made through the API, which reloads leave alone.
        #expect(try await daemon.request(
            .POST, "/connectors", contentType: "application/json",
            body: #"{"name": "api-hook", "config": {"connector.class": "http-source", "topic": "other"}}"#).0 == 201)
        let refused = try await daemon.request(
            .PUT, "/connectors/hook-a/config", contentType: "application/json", body: #"{"connector.class": "http-source", "topic": "other"}"#)
        #expect(refused.0 == 409 && refused.1.contains("defined_in_file") && refused.1.contains("edgelog.toml:"), "\(refused.1)")

        // hook-a now writes to "other"; hook-b is new.
        let original = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
        let changed = original.replacingOccurrences(of: hookA, with: hookA.replacingOccurrences(of: "\"sensors\"", with: "\"other\""))
            + "\n[[connectors]]\nname = \"hook-b\"\ntype = \"http-source\"\ntopic = \"sensors\"\n"
        #expect(changed != original)
        try changed.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        kill(daemon.process!.processIdentifier, SIGHUP)
        // One reload: hook-a restarted with its new topic before hook-b was added.
        try await Self.waitForState(daemon, "hook-b", "RUNNING")
        try await Self.waitForState(daemon, "hook-a", "RUNNING")
        #expect(try await ingest("hook-a", "a2") == 200)
        #expect(try await daemon.recordValues("other") == [#""a2""#])
        #expect(try await daemon.request(.GET, "/connectors").1 == #"["api-hook","hook-a","hook-b","http"]"#)
        #expect(try await ingest("hook-b", "b1") == 200)

        // hook-a gone from the file: stopped and forgotten.
        try original.replacingOccurrences(of: hookA, with: "").write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        kill(daemon.process!.processIdentifier, SIGHUP)
        try await mqttEventually("hook-a removed") { try await daemon.request(.GET, "/connectors").1 == #"["api-hook","http"]"# }
        try await Self.waitForState(daemon, "api-hook", "RUNNING")
        try await mqttEventually("hook-a's endpoint gone") { try await ingest("hook-a", "a3") == 404 }
        #expect(try await daemon.recordValues("sensors") == [#""a1""#, #""b1""#])
    }
}
