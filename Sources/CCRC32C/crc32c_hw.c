#include "CCRC32C.h"
#include <string.h>

#if defined(__x86_64__)

int edgelog_crc32c_hw_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t edgelog_crc32c_hw(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    uint64_t state = ~crc;
    // Byte steps until p is 8-byte aligned, then 8 bytes per instruction.
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        state = __builtin_ia32_crc32qi((uint32_t)state, *p++);
        length--;
    }
    while (length >= 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p, 8); memcpy(&w1, p + 8, 8); memcpy(&w2, p + 16, 8); memcpy(&w3, p + 24, 8);
        state = __builtin_ia32_crc32di(state, w0);
        state = __builtin_ia32_crc32di(state, w1);
        state = __builtin_ia32_crc32di(state, w2);
        state = __builtin_ia32_crc32di(state, w3);
        p += 32;
        length -= 32;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        state = __builtin_ia32_crc32di(state, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        state = __builtin_ia32_crc32qi((uint32_t)state, *p++);
        length--;
    }
    return ~(uint32_t)state;
}

#elif defined(__aarch64__)

#include <sys/auxv.h>
#include <arm_acle.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif

int edgelog_crc32c_hw_available(void) {
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
}

__attribute__((target("+crc")))
uint32_t edgelog_crc32c_hw(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    uint32_t state = ~crc;
    while (length > 0 && ((uintptr_t)p & 7) != 0) {
        state = __crc32cb(state, *p++);
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        state = __crc32cd(state, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        state = __crc32cb(state, *p++);
        length--;
    }
    return ~state;
}

#else

int edgelog_crc32c_hw_available(void) { return 0; }

uint32_t edgelog_crc32c_hw(uint32_t crc, const void *bytes, size_t length) {
    (void)bytes; (void)length;
    return crc;
}

#endif
