// Throughput of the primitives on the backup hot path: chunking, sealing and opening,
// content ids, SHA-256 and zstd compression. Inputs are deterministic so runs compare.
#include <benchmark/benchmark.h>
#include <zstd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "chunk/fastcdc.h"
#include "crypto/crypto.h"
#include "util/bytes.h"

namespace lb {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Incompressible bytes.
Bytes RandomData(size_t n, uint64_t seed = 42) {
  Bytes out(n);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t z = SplitMix64(state);
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = uint8_t(z >> (8 * j));
  }
  return out;
}

// Text-like bytes: words from a small vocabulary with skewed frequencies, spaces,
// punctuation and line breaks; compresses roughly like prose or log files.
Bytes TextData(size_t n, uint64_t seed = 7) {
  static constexpr std::array<std::string_view, 32> kWords = {
      "the",   "backup",     "of",  "a",        "database", "and",     "to",      "is",
      "in",    "snapshot",   "for", "with",     "file",     "pack",    "index",   "that",
      "chunk", "restore",    "on",  "server",   "by",       "error",   "storage", "it",
      "from",  "repository", "key", "lifeboat", "wal",      "segment", "time",    "check"};
  Bytes out;
  out.reserve(n + 16);
  uint64_t state = seed;
  size_t words_in_line = 0;
  while (out.size() < n) {
    uint64_t r = SplitMix64(state);
    // Product of two uniforms skews toward the first (frequent) words.
    size_t idx = ((r & 31) * ((r >> 5) & 31)) / 32;
    std::string_view w = kWords[idx];
    out.insert(out.end(), w.begin(), w.end());
    if (++words_in_line >= 8 + ((r >> 10) & 7)) {
      out.push_back('.');
      out.push_back('\n');
      words_in_line = 0;
    } else {
      out.push_back(' ');
    }
  }
  out.resize(n);
  return out;
}

void BM_ChunkerCut(benchmark::State& state) {
  static const Bytes data = RandomData(64 * kMiB);
  chunk::Chunker chunker(chunk::ChunkerParams{});
  size_t chunks = 0;
  for (auto _ : state) {
    ByteSpan rest = data;
    while (!rest.empty()) {
      size_t len = chunker.Cut(rest);
      rest = rest.subspan(len);
      ++chunks;
    }
    benchmark::DoNotOptimize(chunks);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(data.size()));
  state.counters["chunks"] = double(chunks) / double(state.iterations());
}
BENCHMARK(BM_ChunkerCut)->Unit(benchmark::kMillisecond);

void BM_Seal(benchmark::State& state) {
  Bytes plain = RandomData(kMiB);
  crypto::Key key = crypto::Key::Random();
  Bytes out;
  out.reserve(kMiB + crypto::kSealOverhead);
  for (auto _ : state) {
    out.clear();
    crypto::SealAppend(key, plain, {}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(plain.size()));
}
BENCHMARK(BM_Seal)->Unit(benchmark::kMicrosecond);

void BM_Open(benchmark::State& state) {
  Bytes plain = RandomData(kMiB);
  crypto::Key key = crypto::Key::Random();
  Bytes sealed = crypto::Seal(key, plain);
  for (auto _ : state) {
    Result<Bytes> opened = crypto::Open(key, sealed);
    if (!opened.ok()) {
      state.SkipWithError("open failed");
      break;
    }
    benchmark::DoNotOptimize(opened->data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(plain.size()));
}
BENCHMARK(BM_Open)->Unit(benchmark::kMicrosecond);

void BM_ContentId(benchmark::State& state) {
  Bytes data = RandomData(kMiB);
  crypto::Key key = crypto::Key::Random();
  for (auto _ : state) {
    crypto::Id id = crypto::ContentId(key, data);
    benchmark::DoNotOptimize(id);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(data.size()));
}
BENCHMARK(BM_ContentId)->Unit(benchmark::kMicrosecond);

void BM_Sha256(benchmark::State& state) {
  Bytes data = RandomData(kMiB);
  for (auto _ : state) {
    crypto::Id id = crypto::Sha256(data);
    benchmark::DoNotOptimize(id);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(data.size()));
}
BENCHMARK(BM_Sha256)->Unit(benchmark::kMicrosecond);

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// Args: {zstd level, 0 = random data / 1 = text-like data}. The context is reused across
// iterations, as the pack writer does.
void BM_ZstdCompress(benchmark::State& state) {
  int level = int(state.range(0));
  bool text = state.range(1) != 0;
  Bytes input = text ? TextData(kMiB) : RandomData(kMiB);
  Bytes out(ZSTD_compressBound(input.size()));
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  size_t compressed = 0;
  for (auto _ : state) {
    compressed =
        ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), input.data(), input.size(), level);
    if (ZSTD_isError(compressed)) {
      state.SkipWithError(ZSTD_getErrorName(compressed));
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(input.size()));
  state.SetLabel(text ? "text" : "random");
  state.counters["ratio"] = double(input.size()) / double(compressed ? compressed : 1);
}
BENCHMARK(BM_ZstdCompress)
    ->ArgNames({"level", "text"})
    ->Args({1, 0})
    ->Args({3, 0})
    ->Args({1, 1})
    ->Args({3, 1})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace lb

BENCHMARK_MAIN();
