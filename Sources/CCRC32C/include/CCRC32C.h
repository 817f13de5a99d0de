// CRC-32C (Castagnoli) with the CPU's CRC instruction: SSE 4.2 on x86-64, the ARMv8 CRC
// extension on AArch64. Kafka's RecordBatch v2 checksums use this polynomial; zlib's crc32
// is a different one.
#ifndef EDGELOG_CCRC32C_H
#define EDGELOG_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC-32C instruction that `edgelog_crc32c_hw` can use, else 0.
int edgelog_crc32c_hw_available(void);

/// Continues a CRC-32C over `length` bytes. `crc` is a finished CRC (0 to start), as with
/// zlib's crc32(). Must only be called when `edgelog_crc32c_hw_available()` returned 1.
uint32_t edgelog_crc32c_hw(uint32_t crc, const void *bytes, size_t length);

#endif
