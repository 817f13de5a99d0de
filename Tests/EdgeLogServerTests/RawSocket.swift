import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A plain blocking TCP socket to 127.0.0.1, for sending frames no client library would.
final class RawSocket: @unchecked Sendable {  // a test drives it from one thread at a time per direction
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw MQTTTestFailure("connect to \(port): errno \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// A request frame: size, api key, version, correlation id, client id (header v1), body.
    func sendRequest(apiKey: Int16, version: Int16, correlationId: Int32 = 7, body: [UInt8] = []) {
        var frame: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.bigEndian) { frame += $0 } }
        append(apiKey)
        append(version)
        append(correlationId)
        append(Int16(4))
        frame += Array("test".utf8)
        frame += body
        var sized: [UInt8] = []
        withUnsafeBytes(of: Int32(frame.count).bigEndian) { sized += $0 }
        send(sized + frame)
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the peer closes or the timeout passes; returns what arrived and whether
    /// the peer closed.
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 { return (received, true) }
            if count < 0 { return (received, false) }
            received += buffer[0..<count]
        }
    }

    /// Reads one response frame (size-prefixed); nil when the connection closed first.
    func readFrame() -> [UInt8]? {
        func read(_ count: Int) -> [UInt8]? {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: count)
            while bytes.count < count {
                let got = recv(fd, &buffer, count - bytes.count, 0)
                if got <= 0 { return nil }
                bytes += buffer[0..<got]
            }
            return bytes
        }
        guard let size = read(4) else { return nil }
        let length = Int(Int32(bigEndian: size.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        return read(length)
    }
}
