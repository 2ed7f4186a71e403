#include "util/compress.h"

#include <zstd.h>

#include <memory>

namespace lb {

namespace {
struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
}  // namespace

void ZstdCompressAppend(ByteSpan in, int level, Bytes& out) {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  size_t base = out.size();
  out.resize(base + ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compressCCtx(cctx.get(), out.data() + base, out.size() - base, in.data(),
                               in.size(), level);
  // Compression into a buffer of compressBound cannot fail except on programmer error.
  if (ZSTD_isError(n)) std::abort();
  out.resize(base + n);
}

size_t ZstdCompressInto(ByteSpan in, int level, uint8_t* out, size_t cap) {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  size_t n = ZSTD_compressCCtx(cctx.get(), out, cap, in.data(), in.size(), level);
  return ZSTD_isError(n) ? 0 : n;
}

Result<Bytes> ZstdDecompress(ByteSpan in, size_t expected_size) {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  unsigned long long frame = ZSTD_getFrameContentSize(in.data(), in.size());
  if (frame == ZSTD_CONTENTSIZE_ERROR || frame == ZSTD_CONTENTSIZE_UNKNOWN)
    return Err(Code::kCorruption, "bad zstd frame header");
  if (expected_size != 0 && frame != expected_size)
    return Err(Code::kCorruption, "zstd frame holds {} bytes, expected {}", frame, expected_size);
  if (frame > (1ull << 34)) return Err(Code::kCorruption, "zstd frame too large ({})", frame);
  Bytes out(frame);
  size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n) || n != frame)
    return Err(Code::kCorruption, "zstd: {}", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
  return out;
}

}  // namespace lb
