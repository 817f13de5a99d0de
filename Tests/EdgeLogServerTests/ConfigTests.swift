import EdgeLogServer
import EdgeLogStorage
import Foundation
import Testing

@Suite struct ConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func anEmptyFileGivesTheDefaults() throws {
        let config = try EdgelogConfig.parse("", file: "empty.toml")
        #expect(config == EdgelogConfig())
        #expect(config.http.host == "127.0.0.1" && config.http.port == 8080)
        #expect(config.storage.log.flush == .always)
        #expect(config.server.dataDirectory == "/var/lib/edgelog")
    }

    @Test func theShippedExamplesAreValid() throws {
        let example = try EdgelogConfig.load(file: Self.repository + "/config/edgelog.toml", environment: [:])
        #expect(example.routes.count >= 1)
        let dev = try EdgelogConfig.load(file: Self.repository + "/config/dev.toml", environment: [:])
        #expect(dev.server.dataDirectory == "./data")
        #expect(dev.brokers.first?.clientId == "edgelog-dev")
        #expect(dev.topics.map(\.name).contains("sensors"))
    }

    @Test func theEmbeddedDefaultsAreConfigDevToml() throws {
        let file = try String(contentsOfFile: Self.repository + "/config/dev.toml", encoding: .utf8)
        #expect(EdgelogConfig.embeddedDefaultsText == file, "update EdgelogConfig+EmbeddedDefaults.swift with config/dev.toml")
        #expect(EdgelogConfig.embeddedDefaults().routes.count == 2)
    }

    @Test func everyKeyIsRead() throws {
        let config = try EdgelogConfig.parse(
            """
            [server]
            data_dir = "/srv/edgelog"
            shutdown_timeout_seconds = 10

            [http]
            listen = "0.0.0.0:9000"
            max_body_bytes = 65536
            auth_token = "secret"
            auto_create_topics = false
            default_partitions = 2

            [storage]
            codec = "zstd"
            flush = "interval"
            flush_interval_ms = 250
            retention_hours = 0
            retention_bytes = 1000000
            disk_budget_bytes = 5000000
            overflow = "drop-oldest"
            linger_ms = 5

            [[topics]]
            name = "sensors"
            partitions = 6
            codec = "lz4"

            [[mqtt.brokers]]
            name = "site-broker"
            port = 1884
            client_id = "edge-7"
            ack = "fast"
            connections = 4

            [[mqtt.routes]]
            filter = "sensors/{site}/{device}/#"
            topic = "sensors"
            key = "{site}-{device}"
            """, file: "full.toml", environment: ["EDGELOG_MQTT_PASSWORD_SITE_BROKER": "pw"])
        #expect(config.server.dataDirectory == "/srv/edgelog" && config.server.shutdownTimeoutSeconds == 10)
        #expect(config.http.host == "0.0.0.0" && config.http.port == 9000 && config.http.authToken == "secret")
        #expect(!config.http.autoCreateTopics && config.http.defaultPartitions == 2)
        #expect(config.storage.log.codec == .zstd && config.storage.log.flush == .interval(milliseconds: 250))
        #expect(config.storage.log.retentionMs == nil && config.storage.log.retentionBytes == 1_000_000)
        #expect(config.storage.diskBudgetBytes == 5_000_000 && config.storage.overflow == .dropOldest)
        #expect(config.storage.log.lingerMicroseconds == 5000)
        #expect(config.topics.first?.partitions == 6 && config.topics.first?.log.codec == .lz4)
        #expect(config.topics.first?.log.flush == .interval(milliseconds: 250), "topics inherit [storage]")
        let broker = try #require(config.brokers.first)
        #expect(broker.port == 1884 && broker.clientId == "edge-7" && broker.ack == .fast && broker.connections == 4)
        #expect(broker.password == "pw")
        let route = try #require(config.routes.first)
        #expect(route.filter.subscription == "sensors/+/+/#")
        let captures = try #require(route.filter.match("sensors/plant-3/pump-7/temperature/raw"))
        #expect(route.key?.render(captures) == "plant-3-pump-7")
        #expect(route.filter.match("sensors/plant-3") == nil)
        #expect(route.filter.match("other/plant-3/pump-7/x") == nil)
    }

    @Test(arguments: [
        ("[http]\nlisten = 8080\n", 2, "http.listen", "expected a string"),
        ("[http]\nlisten = \"localhost\"\n", 2, "http.listen", "expected host:port"),
        ("[storage]\ncodec = \"snappy\"\n", 2, "storage.codec", "not one of none, gzip, lz4, zstd"),
        ("[storage]\n\nflsuh = \"always\"\n", 3, "storage.flsuh", "unknown key"),
        ("[[topics]]\nname = \"a b\"\n", 2, "topics[0].name", "invalid topic name"),
        ("[[mqtt.brokers]]\nname = \"x\"\nport = 70000\n", 3, "mqtt.brokers[0].port", "out of range"),
        ("[[mqtt.routes]]\nfilter = \"a/#/b\"\ntopic = \"t\"\n", 2, "mqtt.routes[0].filter", "'#' must be the last level"),
        ("[[mqtt.routes]]\nfilter = \"a/{x}\"\ntopic = \"t\"\nkey = \"{y}\"\n", 4, "mqtt.routes[0].key", "captures only {x}"),
        ("[storage]\noverflow = \"drop\"\n", 2, "storage.overflow", "not one of the allowed values"),
    ] as [(String, Int, String, String)])
    func errorsNameTheFileLineAndKey(text: String, line: Int, key: String, message: String) {
        do {
            _ = try EdgelogConfig.parse(text, file: "bad.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "bad.toml")
            #expect(error.line == line, "\(error)")
            #expect(error.key == key, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func syntaxErrorsCarryTheLine() {
        do {
            _ = try EdgelogConfig.parse("[http]\nenabled = true\nlisten = \"127.0.0.1:1\n", file: "syntax.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.line == 3, "\(error)")
            #expect(error.description.hasPrefix("syntax.toml:3: "))
        }
    }

    @Test func secretsComeFromTheEnvironment() throws {
        let config = try EdgelogConfig.parse("[http]\nauth_token = \"in-file\"\n", file: "x", environment: ["EDGELOG_HTTP_TOKEN": "from-env"])
        #expect(config.http.authToken == "from-env")
    }
}
