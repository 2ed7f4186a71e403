// Index memory as the repository grows: writes index files listing N synthetic blobs (what
// N MiB-sized chunks of backups would leave), then, in a fresh child process, loads the index
// the way every command does and looks up 1,000,000 random ids (half present). Prints the
// child's peak RSS and its anonymous / file-backed split, so the claim "memory does not grow
// with the repository" is a number.
//
//   lb_index_rss DIR N [N ...]      e.g. lb_index_rss /tmp/idx 100000 1000000 10000000
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "repo/index.h"
#include "repo/names.h"
#include "repo/repository.h"
#include "storage/storage.h"

using namespace lb;

namespace {

std::string ProcStatus(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return line.substr(strlen(key));
  return "?";
}

crypto::Id RandomId(std::mt19937_64& rng) {
  crypto::Id id;
  for (size_t i = 0; i < 32; i += 8) {
    uint64_t v = rng();
    std::memcpy(id.bytes.data() + i, &v, 8);
  }
  return id;
}

int Run(const std::string& dir, uint64_t n) {
  namespace fs = std::filesystem;
  std::string repo_dir = dir + "/repo-" + std::to_string(n);
  std::string cache = dir + "/cache-" + std::to_string(n);
  fs::remove_all(repo_dir);
  fs::remove_all(cache);
  setenv("LIFEBOAT_TEST_FAST_KDF", "1", 1);
  setenv("LIFEBOAT_CACHE_DIR", cache.c_str(), 1);
  {
    auto st = storage::OpenStorage(repo_dir, true);
    if (!st.ok() || !repo::Repository::Init(**st, "pw").ok()) return 1;
  }
  auto st = storage::OpenStorage(repo_dir);
  auto r = repo::Repository::Open(std::move(*st), "pw");
  if (!r.ok()) return 1;
  // Index files of 200,000 entries each, 40 blobs a pack (16 MiB packs of ~400 KiB blobs).
  std::mt19937_64 rng(n);
  uint64_t left = n;
  while (left > 0) {
    uint64_t batch = std::min<uint64_t>(left, 200000);
    std::vector<repo::IndexPack> packs;
    for (uint64_t i = 0; i < batch; i += 40) {
      repo::IndexPack p;
      p.id = RandomId(rng);
      for (uint64_t j = i; j < std::min(batch, i + 40); ++j)
        p.blobs.push_back({RandomId(rng), repo::BlobType::kData, uint32_t((j - i) * 400000),
                           400000, 1048576});
      packs.push_back(std::move(p));
    }
    Bytes run = repo::EncodeRun(packs);
    auto [id, sealed] = repo::SealIndexFile((*r)->key(), run);
    if (!(*r)->storage().Put(repo::IndexName(id), sealed).ok()) return 1;
    left -= batch;
  }
  // Warm the cache once (decrypt + merge), as the first command after a backup would.
  pid_t warm = fork();
  if (warm == 0) _exit((*r)->LoadIndex().ok() ? 0 : 1);
  int status = 0;
  waitpid(warm, &status, 0);
  pid_t child = fork();
  if (child == 0) {
    auto t0 = std::chrono::steady_clock::now();
    if (!(*r)->LoadIndex().ok()) _exit(1);
    auto idx = (*r)->index();
    auto t1 = std::chrono::steady_clock::now();
    std::mt19937_64 probe(n);  // replays the same ids: every other lookup is a hit
    uint64_t hits = 0;
    for (int i = 0; i < 1000000; ++i) {
      crypto::Id id = (i % 2 == 0) ? RandomId(probe) : RandomId(rng);
      if (i % 2 == 0 && (i / 2) % 41 == 40) RandomId(probe);  // skip pack ids in the stream
      hits += (*idx)->Has(id);
    }
    auto t2 = std::chrono::steady_clock::now();
    std::printf("%12llu entries: load %6.0f ms, 1M lookups %6.0f ms (%llu hits); peak RSS %s, "
                "RssAnon %s, RssFile %s\n",
                (unsigned long long)n,
                std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count(),
                (unsigned long long)hits, ProcStatus("VmHWM:").c_str(),
                ProcStatus("RssAnon:").c_str(), ProcStatus("RssFile:").c_str());
    std::fflush(stdout);  // _exit does not flush stdio
    _exit(0);
  }
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DIR N [N ...]\n", argv[0]);
    return 2;
  }
  for (int i = 2; i < argc; ++i)
    if (Run(argv[1], std::stoull(argv[i])) != 0) return 1;
  return 0;
}
