// zstd compression of blob and file payloads. Contexts are reused per thread.
#pragma once

#include "util/bytes.h"
#include "util/status.h"

namespace lb {

// Appends the zstd frame of `in` at `level` to `out`.
void ZstdCompressAppend(ByteSpan in, int level, Bytes& out);
// Compresses into out[0, cap); returns the frame size, or 0 when it does not fit.
size_t ZstdCompressInto(ByteSpan in, int level, uint8_t* out, size_t cap);
// Decompresses a frame whose decompressed size must equal `expected_size` when it is not 0
// (0 = take the size from the frame header). kCorruption on any mismatch.
Result<Bytes> ZstdDecompress(ByteSpan in, size_t expected_size = 0);

}  // namespace lb
