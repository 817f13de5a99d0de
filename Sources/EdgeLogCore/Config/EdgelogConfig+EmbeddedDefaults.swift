/// The configuration `edgelog serve` runs on without `--config`: the same text as
/// `config/dev.toml` (a test keeps the two equal): data under ./data, HTTP on 127.0.0.1:8080,
/// the local mosquitto on 1883 with routes for sensors/{site}/{device}/# and events/#.
extension EdgelogConfig {
    public static let embeddedDefaultsText = #"""
# edgelog on a development machine, used by scripts/run: data under ./data, HTTP on
# loopback, the local mosquitto that scripts/run starts. Every key and its default is
# documented in config/edgelog.toml.

[server]
data_dir = "./data"

[http]
listen = "127.0.0.1:8080"

# Any Kafka client (kcat, confluent-kafka, kafka-python) can produce and consume here.
[kafka]
listen = "127.0.0.1:9092"

[storage]
flush = "always"

[[topics]]
name = "sensors"
partitions = 3

[[topics]]
name = "events"
partitions = 1

[[mqtt.brokers]]
name = "local"
host = "127.0.0.1"
port = 1883
# Not the service's id, so a dev run never takes over an installed daemon's session.
client_id = "edgelog-dev"

# sensors/<site>/<device>/... -> topic sensors, keyed by device.
[[mqtt.routes]]
filter = "sensors/{site}/{device}/#"
topic = "sensors"
key = "{device}"

# events/... -> topic events, no key.
[[mqtt.routes]]
filter = "events/#"
topic = "events"

"""#

    public static func embeddedDefaults() -> EdgelogConfig {
        // The text is fixed and tested; a failure here is a build defect, not an input error.
        try! parse(embeddedDefaultsText, file: "<embedded defaults>")
    }

    /// The embedded defaults with the environment's overrides (EDGELOG_DATA_DIR,
    /// EDGELOG_KAFKA_LISTEN, secrets), which can be wrong.
    public static func embeddedDefaults(environment: [String: String]) throws(ConfigError) -> EdgelogConfig {
        try parse(embeddedDefaultsText, file: "<embedded defaults>", environment: environment)
    }
}
