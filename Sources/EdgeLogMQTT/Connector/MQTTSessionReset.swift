#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMosquitto
import EdgeLogCore
import EdgeLogStorage
import Synchronization

/// An mqtt-source's position is the broker's persistent session: the subscriptions and the
/// QoS 1 messages queued while edgelog is away. Dropping it (an offsets reset, or deleting
/// the connector with `offsets=drop`) means telling the broker to forget the session:
/// connecting once under the same client id with clean start and no session expiry, then
/// disconnecting. Otherwise the broker keeps queuing for a client that never comes back.
enum MQTTSessionReset {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// What the CONNACK said, set by the connect callback.
    private final class Outcome: Sendable {
        let reasonCode = Mutex<Int32?>(nil)
    }

    /// Forgets the session of `clientId` on `broker`; throws when the broker cannot be
    /// reached or refuses within `timeoutMs`.
    static func forget(broker: EdgelogConfig.Broker, clientId: String, timeoutMs: Int = 5_000) throws(Failure) {
        _ = mosquitto_lib_init()
        guard let handle = mosquitto_new(clientId, true, nil) else {
            throw Failure(description: "mosquitto_new failed: \(String(cString: strerror(errno)))")
        }
        defer { mosquitto_destroy(handle) }
        let outcome = Outcome()
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(outcome).toOpaque())
        _ = mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)
        if let username = broker.username { _ = mosquitto_username_pw_set(handle, username, broker.password) }
        if broker.tlsCAFile != nil || broker.tlsCertFile != nil {
            _ = mosquitto_tls_set(handle, broker.tlsCAFile, nil, broker.tlsCertFile, broker.tlsKeyFile, nil)
        }
        mosquitto_connect_v5_callback_set(handle) { _, userdata, reasonCode, _, _ in
            Unmanaged<Outcome>.fromOpaque(userdata!).takeUnretainedValue().reasonCode.withLock { $0 = reasonCode }
        }
        let address = "\(broker.host):\(broker.port)"
        // Clean start, and no Session Expiry Interval: the session ends with this connection.
        let rc = mosquitto_connect_bind_v5(handle, broker.host, Int32(broker.port), 10, nil, nil)
        guard rc == MQTTClient.success else {
            throw Failure(description: "cannot reach \(address) to drop the session of \(clientId): \(MQTTClient.describe(rc))")
        }
        let deadline = BlockingCondition.nowNanos() + UInt64(timeoutMs) * 1_000_000
        while outcome.reasonCode.withLock({ $0 }) == nil {
            guard BlockingCondition.nowNanos() < deadline else {
                throw Failure(description: "\(address) did not answer the CONNACK for \(clientId) in \(timeoutMs) ms")
            }
            let loop = mosquitto_loop(handle, 100, 1)
            guard loop == MQTTClient.success else {
                throw Failure(description: "\(address): \(MQTTClient.describe(loop)) while dropping the session of \(clientId)")
            }
        }
        let code = outcome.reasonCode.withLock { $0 } ?? 0
        guard code == 0 else {
            throw Failure(description: "\(address) refused \(clientId): \(String(cString: mosquitto_reason_string(code))) (\(code))")
        }
        _ = mosquitto_disconnect(handle)
        _ = mosquitto_loop(handle, 100, 1)
    }
}
