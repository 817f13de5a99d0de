import CLZ4
import CZlib
import CZstd
public import NIOCore

/// Compresses and decompresses the records section of batches with reusable codec contexts
/// (one zlib stream, one zstd context, one lz4 context; snappy needs none), so that the hot
/// path allocates no codec state per batch.
///
/// Not thread-safe: each appender and each reader owns one.
public final class BatchCompressor {
    /// Largest decompressed records section accepted, a guard against decompression bombs.
    public let maxDecompressedBytes: Int
    private var gzip: GzipContext?
    private var zstdCompression: OpaquePointer?
    private var zstdDecompression: OpaquePointer?
    private var lz4Decompression: OpaquePointer?

    public init(maxDecompressedBytes: Int = 256 * 1024 * 1024) {
        self.maxDecompressedBytes = maxDecompressedBytes
    }

    deinit {
        if let zstdCompression { ZSTD_freeCCtx(zstdCompression) }
        if let zstdDecompression { ZSTD_freeDCtx(zstdDecompression) }
        if let lz4Decompression { LZ4F_freeDecompressionContext(lz4Decompression) }
    }

    /// The level a codec uses when none is configured: fast ones, for small edge CPUs.
    public static func defaultLevel(for codec: CompressionCodec) -> Int32 {
        switch codec {
        case .gzip: 1
        case .zstd: 3
        case .lz4: 0
        case .none, .snappy: 0
        }
    }

    /// Appends the compressed form of `input`'s readable bytes to `output`.
    public func compress(
        _ input: ByteBuffer, codec: CompressionCodec, level: Int32? = nil, into output: inout ByteBuffer
    ) throws(StorageError) {
        let level = level ?? Self.defaultLevel(for: codec)
        switch codec {
        case .none:
            output.writeImmutableBuffer(input)
        case .gzip:
            if gzip == nil { gzip = try GzipContext() }
            try gzip!.compress(input, level: level, into: &output)
        case .zstd:
            try compressZstd(input, level: level, into: &output)
        case .lz4:
            try compressLZ4(input, level: level, into: &output)
        case .snappy:
            try Snappy.compress(input, into: &output)
        }
    }

    /// Appends the decompressed form of `input`'s readable bytes to `output`. Fails on
    /// truncated or corrupt input and on output over `maxDecompressedBytes`.
    public func decompress(
        _ input: ByteBuffer, codec: CompressionCodec, into output: inout ByteBuffer
    ) throws(StorageError) {
        switch codec {
        case .none:
            output.writeImmutableBuffer(input)
        case .gzip:
            if gzip == nil { gzip = try GzipContext() }
            try gzip!.decompress(input, maxBytes: maxDecompressedBytes, into: &output)
        case .zstd:
            try decompressZstd(input, into: &output)
        case .lz4:
            try decompressLZ4(input, into: &output)
        case .snappy:
            try Snappy.decompress(input, maxBytes: maxDecompressedBytes, into: &output)
        }
    }

    // MARK: zstd

    private func compressZstd(_ input: ByteBuffer, level: Int32, into output: inout ByteBuffer) throws(StorageError) {
        if zstdCompression == nil { zstdCompression = ZSTD_createCCtx() }
        guard let context = zstdCompression else { throw .compression(codec: .zstd, reason: "out of memory") }
        let bound = ZSTD_compressBound(input.readableBytes)
        let result = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                let written = ZSTD_compressCCtx(
                    context, destination.baseAddress, destination.count, source.baseAddress, source.count, level)
                return ZSTD_isError(written) != 0 ? 0 : written
            }
        }
        guard result > 0 || input.readableBytes == 0 else {
            throw .compression(codec: .zstd, reason: "ZSTD_compressCCtx failed")
        }
    }

    private func decompressZstd(_ input: ByteBuffer, into output: inout ByteBuffer) throws(StorageError) {
        if zstdDecompression == nil { zstdDecompression = ZSTD_createDCtx() }
        guard let context = zstdDecompression else { throw .compression(codec: .zstd, reason: "out of memory") }
        ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        let startWriter = output.writerIndex
        var remaining = 1  // ZSTD_decompressStream returns 0 when a frame is complete
        try input.withUnsafeReadableBytes { (source) throws(StorageError) in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while inBuffer.pos < inBuffer.size || remaining != 0 {
                let produced = output.writerIndex - startWriter
                guard produced < maxDecompressedBytes else {
                    throw .compression(codec: .zstd, reason: "decompressed size exceeds \(maxDecompressedBytes) bytes")
                }
                let chunk = min(max(source.count * 4, 64 * 1024), maxDecompressedBytes - produced)
                var failure: Int? = nil
                var stalled = false
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { destination in
                    var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                    let before = inBuffer.pos
                    let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    if ZSTD_isError(result) != 0 {
                        failure = result
                    } else {
                        remaining = result
                        stalled = outBuffer.pos == 0 && inBuffer.pos == before
                    }
                    return outBuffer.pos
                }
                if let failure {
                    throw .compression(codec: .zstd, reason: String(cString: ZSTD_getErrorName(failure)))
                }
                if stalled && inBuffer.pos == inBuffer.size {
                    throw .compression(codec: .zstd, reason: "truncated zstd frame")
                }
            }
        }
    }

    // MARK: lz4

    private func compressLZ4(_ input: ByteBuffer, level: Int32, into output: inout ByteBuffer) throws(StorageError) {
        // Kafka reads LZ4 frames with independent 64 KiB blocks.
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.compressionLevel = level
        let bound = LZ4F_compressFrameBound(input.readableBytes, &preferences)
        var failure = 0
        _ = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                // LZ4F_compressFrame keeps its context on the stack for the fast levels.
                let written = LZ4F_compressFrame(
                    destination.baseAddress, destination.count, source.baseAddress, source.count, &preferences)
                if LZ4F_isError(written) != 0 {
                    failure = written
                    return 0
                }
                return written
            }
        }
        if failure != 0 {
            throw .compression(codec: .lz4, reason: String(cString: LZ4F_getErrorName(failure)))
        }
    }

    private func decompressLZ4(_ input: ByteBuffer, into output: inout ByteBuffer) throws(StorageError) {
        if lz4Decompression == nil {
            var context: OpaquePointer?
            guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0 else {
                throw .compression(codec: .lz4, reason: "cannot create a decompression context")
            }
            lz4Decompression = context
        }
        let context = lz4Decompression
        LZ4F_resetDecompressionContext(context)
        let startWriter = output.writerIndex
        try input.withUnsafeReadableBytes { (source) throws(StorageError) in
            var consumed = 0
            var hint = 1
            while hint != 0 {
                let produced = output.writerIndex - startWriter
                guard produced < maxDecompressedBytes else {
                    throw .compression(codec: .lz4, reason: "decompressed size exceeds \(maxDecompressedBytes) bytes")
                }
                guard consumed < source.count else {
                    throw .compression(codec: .lz4, reason: "truncated lz4 frame")
                }
                let chunk = min(max(source.count * 4, 64 * 1024), maxDecompressedBytes - produced)
                var failure = 0
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { destination in
                    var destinationSize = destination.count
                    var sourceSize = source.count - consumed
                    let result = LZ4F_decompress(
                        context, destination.baseAddress, &destinationSize,
                        source.baseAddress! + consumed, &sourceSize, nil)
                    if LZ4F_isError(result) != 0 {
                        failure = result
                        return 0
                    }
                    consumed += sourceSize
                    hint = result
                    return destinationSize
                }
                if failure != 0 {
                    throw .compression(codec: .lz4, reason: String(cString: LZ4F_getErrorName(failure)))
                }
            }
        }
    }
}

/// One zlib deflate and one inflate stream with the gzip container (windowBits 15 + 16),
/// reset between batches instead of reallocated.
private final class GzipContext {
    private let deflateStream: UnsafeMutablePointer<z_stream>
    private let inflateStream: UnsafeMutablePointer<z_stream>
    private var deflateLevel: Int32 = -2

    init() throws(StorageError) {
        deflateStream = .allocate(capacity: 1)
        deflateStream.initialize(to: z_stream())
        inflateStream = .allocate(capacity: 1)
        inflateStream.initialize(to: z_stream())
        let status = inflateInit2_(inflateStream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw .compression(codec: .gzip, reason: "inflateInit2 returned \(status)") }
    }

    deinit {
        if deflateLevel != -2 { deflateEnd(deflateStream) }
        inflateEnd(inflateStream)
        deflateStream.deallocate()
        inflateStream.deallocate()
    }

    func compress(_ input: ByteBuffer, level: Int32, into output: inout ByteBuffer) throws(StorageError) {
        if deflateLevel != level {
            if deflateLevel != -2 { deflateEnd(deflateStream) }
            deflateStream.initialize(to: z_stream())
            let status = deflateInit2_(
                deflateStream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else {
                deflateLevel = -2
                throw .compression(codec: .gzip, reason: "deflateInit2 level \(level) returned \(status)")
            }
            deflateLevel = level
        } else {
            deflateReset(deflateStream)
        }
        let stream = deflateStream
        let bound = Int(deflateBound(stream, UInt(input.readableBytes))) + 32
        var status: Int32 = Z_OK
        _ = input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                stream.pointee.next_in = UnsafeMutablePointer(
                    mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.pointee.avail_in = uInt(source.count)
                stream.pointee.next_out = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(destination.count)
                status = deflate(stream, Z_FINISH)
                return destination.count - Int(stream.pointee.avail_out)
            }
        }
        guard status == Z_STREAM_END else {
            throw .compression(codec: .gzip, reason: "deflate returned \(status)")
        }
    }

    func decompress(_ input: ByteBuffer, maxBytes: Int, into output: inout ByteBuffer) throws(StorageError) {
        let stream = inflateStream
        inflateReset(stream)
        let startWriter = output.writerIndex
        try input.withUnsafeReadableBytes { (source) throws(StorageError) in
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(source.count)
            while true {
                let produced = output.writerIndex - startWriter
                guard produced < maxBytes else {
                    throw .compression(codec: .gzip, reason: "decompressed size exceeds \(maxBytes) bytes")
                }
                let chunk = min(max(source.count * 4, 64 * 1024), maxBytes - produced)
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { destination in
                    stream.pointee.next_out = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(destination.count)
                    status = inflate(stream, Z_NO_FLUSH)
                    return destination.count - Int(stream.pointee.avail_out)
                }
                switch status {
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.pointee.avail_in == 0:
                    throw .compression(codec: .gzip, reason: "truncated gzip stream")
                case Z_BUF_ERROR:
                    continue
                default:
                    let message = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw .compression(codec: .gzip, reason: message)
                }
            }
        }
    }
}
