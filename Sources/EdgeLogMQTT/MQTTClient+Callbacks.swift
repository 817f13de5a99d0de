#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMosquitto
import Logging
import EdgeLogCore

/// libmosquitto's callbacks; all run on the network thread, inside a libmosquitto call.
extension MQTTClient {
    func didConnect(reasonCode: Int32, flags: Int32) {
        guard reasonCode == 0 else {
            logger.info(
                "the MQTT broker refused the connection",
                metadata: ["edgelog.mqtt.reason": "\(String(cString: mosquitto_reason_string(reasonCode))) (\(reasonCode))"])
            return
        }
        let sessionPresent = flags & 1 == 1
        isConnected = true
        wasConnected = true
        isRefusing = false
        connectFailures = 0
        logger.info(
            "connected to the MQTT broker",
            metadata: [
                "edgelog.mqtt.broker": "\(configuration.host):\(configuration.port)",
                "edgelog.mqtt.session_present": "\(sessionPresent)",
            ])
        onEvent(.connected(sessionPresent: sessionPresent))
        pendingSubscriptions = [:]
        for (index, filter) in configuration.subscriptions.enumerated() {
            var properties: OpaquePointer? = nil
            defer { mosquitto_property_free_all(&properties) }
            var mid: Int32 = 0
            var rc = mosquitto_property_add_varint(&properties, Self.propertySubscriptionIdentifier, UInt32(index + 1))
            if rc == Self.success {
                rc = mosquitto_subscribe_v5(handle, &mid, filter, 1, Self.subscribeOptionSendRetainNew, properties)
            }
            if rc == Self.success {
                pendingSubscriptions[mid] = filter
            } else {
                logger.info(
                    "cannot subscribe", metadata: ["edgelog.mqtt.filter": "\(filter)", "edgelog.mqtt.error": "\(Self.describe(rc))"])
            }
        }
        // The broker's counters: QoS 0 and their retained value on every connect. Not waited
        // for: a broker that denies $SYS to this user must not hold up ingest.
        for topic in configuration.systemTopics {
            let rc = mosquitto_subscribe_v5(handle, nil, topic, 0, 0, nil)
            if rc != Self.success {
                logger.info("cannot subscribe", metadata: ["edgelog.mqtt.filter": "\(topic)", "edgelog.mqtt.error": "\(Self.describe(rc))"])
            }
        }
        if configuration.subscriptions.isEmpty { onEvent(.subscribed) }
    }

    func didSubscribe(mid: Int32, count: Int32, granted: UnsafePointer<Int32>?) {
        guard let filter = pendingSubscriptions.removeValue(forKey: mid) else { return }
        for index in 0..<Int(count) {
            let code = granted?[index] ?? 0x80
            if code >= 0x80 {
                logger.info(
                    "the MQTT broker refused a subscription",
                    metadata: [
                        "edgelog.mqtt.filter": "\(filter)",
                        "edgelog.mqtt.reason": "\(String(cString: mosquitto_reason_string(code))) (\(code))",
                    ])
            } else if code < 1 {
                logger.info("the MQTT broker granted only QoS 0", metadata: ["edgelog.mqtt.filter": "\(filter)"])
            }
        }
        if pendingSubscriptions.isEmpty {
            logger.debug("subscribed", metadata: ["edgelog.mqtt.filters": "\(configuration.subscriptions)"])
            onEvent(.subscribed)
        }
    }

    func didDisconnect(reasonCode: Int32) {
        guard isConnected else { return }
        isConnected = false
        pendingSubscriptions = [:]
        lastDisconnectReason = reasonCode
        onEvent(.disconnected)
    }

    func didReceive(_ pointer: UnsafePointer<mosquitto_message>?, properties: OpaquePointer?) {
        guard let raw = pointer?.pointee else { return }
        guard !isRefusing else {
            dropConnection()
            return
        }
        switch onMessage(message(from: raw, properties: properties)) {
        case .acknowledge:
            groupMessages += 1
            groupBytes += Int(raw.payloadlen)
            // Inside `mosquitto_loop` (before the CONNACK was seen, or the TLS handshake's
            // call): it may write the queued PUBACK when this callback returns, so the
            // message's group is committed here and now.
            if !isReadingGroup { finishGroup() }
        case .refuse:
            refuseGroup()
        }
        // Queuing the PUBACK left EAGAIN in errno (libmosquitto's wake-up socketpair is full,
        // as the thread never reads it), and mosquitto_loop_read stops at the next packet
        // when it sees EAGAIN, even with decrypted TLS bytes pending.
        errno = 0
    }

    /// Ends the connection from inside a libmosquitto call so that no queued PUBACK is ever
    /// written (see the type's documentation for why not `mosquitto_disconnect`).
    func dropConnection() {
        let fd = mosquitto_socket(handle)
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
