#include "repo/repository.h"

#include <nlohmann/json.hpp>
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "repo/names.h"
#include "util/compress.h"
#include "util/log.h"

namespace lb::repo {

using nlohmann::json;

namespace {
constexpr char kConfigAad[] = "lifeboat-config";
constexpr uint8_t kFileZstd = 1;
}  // namespace

Result<std::string> Repository::Init(storage::Storage& st, const Secret& secret,
                                     const InitOptions& opts) {
  auto existing = st.Stat(kConfigName);
  if (existing.ok())
    return Err(Code::kAlreadyExists, "'{}' already holds a repository", st.Location());
  if (existing.status().code() != Code::kNotFound) return existing.status();
  if (secret.value.empty()) return Err(Code::kInvalidArgument, "the password is empty");

  MasterKey master = MasterKey::Random();
  Bytes rid(32);
  crypto::RandomBytes(rid);
  std::string id = HexEncode(rid);
  chunk::ChunkerParams cp;
  if (opts.params_from) {
    master.id = opts.params_from->key().id;
    master.chunker_seed = opts.params_from->key().chunker_seed;
    cp = opts.params_from->config().chunker;
  }
  json params = {{"chunker_min", cp.min_size},    {"chunker_avg_bits", cp.avg_bits},
                 {"chunker_max", cp.max_size},    {"zstd_level", opts.zstd_level},
                 {"pack_size", opts.pack_size}};
  std::string ptext = params.dump();
  Bytes sealed = crypto::Seal(master.enc, AsBytes(ptext), AsBytes(kConfigAad));
  json cfg = {{"format", "lifeboat-repository"},
              {"version", kFormatVersion},
              {"id", id},
              {"created", NowRfc3339()},
              {"params", HexEncode(sealed)}};
  // Key first, config last: a repository exists exactly when its config does. A key left by
  // an init killed midway cannot open the config's params, so Open skips it.
  LB_RETURN_IF_ERROR(AddKey(st, master, secret, opts.kdf).status());
  std::string text = cfg.dump(2) + "\n";
  LB_RETURN_IF_ERROR(st.Put(kConfigName, AsBytes(text), {.exclusive = true})
                         .WithContext("write config"));
  return id;
}

Result<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<storage::Storage> st,
                                                     const Secret& secret) {
  auto text = st->Get(kConfigName);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Status(Code::kFailedPrecondition,
                    fmt::format("'{}' is not a lifeboat repository", st->Location()))
          .WithHint("create one with 'lifeboat init', or check --repo / LIFEBOAT_REPO");
    return text.status().WithContext("read config");
  }
  std::unique_ptr<Repository> r(new Repository());
  Bytes sealed;
  try {
    json cfg = json::parse(AsString(*text));
    if (!cfg.is_object() || !cfg.contains("format") || !cfg["format"].is_string() ||
        cfg["format"].get<std::string>() != "lifeboat-repository")
      return Err(Code::kFailedPrecondition, "'{}' is not a lifeboat repository", st->Location());
    if (!cfg.contains("version") || !cfg["version"].is_number_integer())
      return Err(Code::kCorruption, "config: 'version' is missing or not a number");
    int version = cfg["version"].get<int>();
    if (version > kFormatVersion)
      return Status(Code::kFailedPrecondition,
                    fmt::format("repository format version {} is newer than this lifeboat "
                                "supports ({})", version, kFormatVersion))
          .WithHint("upgrade lifeboat");
    if (version < 1)
      return Err(Code::kFailedPrecondition, "repository format version {} is invalid", version);
    r->config_.version = version;
    r->config_.id = cfg.value("id", "");
    Bytes rid;
    // The id names the cache directory: only 64 hex digits may reach the file system.
    if (r->config_.id.size() != 64 || !HexDecode(r->config_.id, rid))
      return Err(Code::kCorruption, "config: bad repository id");
    if (!HexDecode(cfg.value("params", ""), sealed))
      return Err(Code::kCorruption, "config: bad params encoding");
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "config of '{}' is unreadable: {}", st->Location(), e.what());
  }

  std::string ptext;
  auto verify = [&](const MasterKey& m) {
    auto p = crypto::Open(m.enc, sealed, AsBytes(kConfigAad));
    if (!p.ok()) return false;
    ptext.assign(AsString(*p));
    return true;
  };
  LB_ASSIGN_OR_RETURN(OpenedKey opened, OpenWithSecret(*st, secret, verify));
  r->key_ = std::move(opened.master);
  r->key_id_ = std::move(opened.key_id);
  try {
    json p = json::parse(ptext);
    r->config_.chunker.min_size = p.at("chunker_min").get<uint32_t>();
    r->config_.chunker.avg_bits = p.at("chunker_avg_bits").get<uint32_t>();
    r->config_.chunker.max_size = p.at("chunker_max").get<uint32_t>();
    r->config_.zstd_level = p.at("zstd_level").get<int>();
    r->config_.pack_size = p.at("pack_size").get<uint32_t>();
  } catch (const std::exception& e) {
    return Err(Code::kCorruption, "config params: {}", e.what());
  }
  const auto& c = r->config_.chunker;
  if (c.min_size < 64 || c.max_size > (64u << 20) || c.min_size > c.max_size ||
      c.avg_bits < 8 || c.avg_bits > 26 || r->config_.pack_size > (1u << 30))
    return Err(Code::kCorruption, "config params out of range");
  r->config_.chunker.seed = r->key_.chunker_seed;
  r->storage_ = std::move(st);
  return r;
}

std::string Repository::cache_dir() const { return DefaultCacheRoot() + "/" + config_.id; }

Status Repository::LoadIndex() {
  std::lock_guard lock(index_mu_);
  LB_ASSIGN_OR_RETURN(auto idx, Index::Load(*storage_, key_, cache_dir()));
  for (const auto& [id, status] : idx->bad_files())
    LogWarning("index file {} skipped: {} (run 'lifeboat check')", id.Short(), status.ToString());
  index_ = std::move(idx);
  return Status::Ok();
}

Result<Index*> Repository::index() {
  {
    std::lock_guard lock(index_mu_);
    if (index_) return index_.get();
  }
  LB_RETURN_IF_ERROR(LoadIndex());
  std::lock_guard lock(index_mu_);
  return index_.get();
}

Result<crypto::Id> Repository::SaveFile(std::string_view dir, ByteSpan plaintext) {
  Bytes inner{kFileZstd};
  ZstdCompressAppend(plaintext, 3, inner);
  std::string aad = "lifeboat-" + std::string(dir);
  Bytes sealed = crypto::Seal(key_.enc, inner, AsBytes(aad));
  crypto::Id id = crypto::Sha256(sealed);
  std::string name = std::string(dir) + "/" + id.Hex();
  LB_RETURN_IF_ERROR(
      storage_->Put(name, sealed).WithContext(fmt::format("write '{}'", name)));
  return id;
}

Result<Bytes> Repository::LoadFile(std::string_view dir, const crypto::Id& id) {
  std::string name = std::string(dir) + "/" + id.Hex();
  auto stored = storage_->Get(name);
  if (!stored.ok()) return stored.status().WithContext(fmt::format("read '{}'", name));
  if (crypto::Sha256(*stored) != id)
    return Err(Code::kCorruption, "'{}': content does not match its name", name);
  std::string aad = "lifeboat-" + std::string(dir);
  auto inner = crypto::Open(key_.enc, *stored, AsBytes(aad));
  if (!inner.ok()) return inner.status().WithContext(fmt::format("'{}'", name));
  if (inner->empty() || (*inner)[0] != kFileZstd)
    return Err(Code::kCorruption, "'{}': unknown encoding", name);
  auto plain = ZstdDecompress(ByteSpan(*inner).subspan(1));
  if (!plain.ok()) return plain.status().WithContext(fmt::format("'{}'", name));
  return plain;
}

Status Repository::PutNamed(const std::string& name, ByteSpan plaintext, int level,
                            bool exclusive) {
  std::string aad = "lifeboat-object:" + name;
  // Same inner layout as a blob, [compression][payload], built and sealed in one raw buffer:
  // WAL segments come through here once per archive_command, and zero-filling a 16 MiB
  // vector first would cost more than compressing it.
  size_t cap = crypto::kNonceSize + 1 + std::max(ZSTD_compressBound(plaintext.size()),
                                                 plaintext.size()) + crypto::kTagSize;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[cap]);
  uint8_t* payload = buf.get() + crypto::kNonceSize;
  size_t len = 0;
  if (level > 0 && plaintext.size() >= 64) {
    size_t n = ZstdCompressInto(plaintext, level, payload + 1, cap - crypto::kNonceSize - 1 -
                                                                   crypto::kTagSize);
    if (n > 0 && n < plaintext.size()) {
      payload[0] = kFileZstd;
      len = 1 + n;
    }
  }
  if (len == 0) {
    payload[0] = 0;
    std::memcpy(payload + 1, plaintext.data(), plaintext.size());
    len = 1 + plaintext.size();
  }
  crypto::SealRaw(key_.enc, buf.get(), len, AsBytes(aad));
  return storage_->Put(name, {buf.get(), crypto::kNonceSize + len + crypto::kTagSize},
                       {.exclusive = exclusive})
      .WithContext(fmt::format("write '{}'", name));
}

Result<Bytes> Repository::GetNamedPayload(const std::string& name) {
  auto stored = storage_->Get(name);
  if (!stored.ok()) return stored.status();
  std::string aad = "lifeboat-object:" + name;
  auto inner = crypto::Open(key_.enc, *stored, AsBytes(aad));
  if (!inner.ok()) return inner.status().WithContext(fmt::format("'{}'", name));
  if (inner->empty()) return Err(Code::kCorruption, "'{}': empty payload", name);
  if ((*inner)[0] != 0 && (*inner)[0] != kFileZstd)
    return Err(Code::kCorruption, "'{}': unknown encoding", name);
  return inner;
}

Status Repository::PutNamedPayload(const std::string& name, ByteSpan payload, bool exclusive) {
  std::string aad = "lifeboat-object:" + name;
  Bytes sealed = crypto::Seal(key_.enc, payload, AsBytes(aad));
  return storage_->Put(name, sealed, {.exclusive = exclusive})
      .WithContext(fmt::format("write '{}'", name));
}

Result<Bytes> Repository::GetNamed(const std::string& name) {
  LB_ASSIGN_OR_RETURN(Bytes inner, GetNamedPayload(name));
  if (inner[0] == 0) return Bytes(inner.begin() + 1, inner.end());
  auto plain = ZstdDecompress(ByteSpan(inner).subspan(1));
  if (!plain.ok()) return plain.status().WithContext(fmt::format("'{}'", name));
  return plain;
}

Result<Bytes> Repository::LoadBlob(const crypto::Id& id) {
  LB_ASSIGN_OR_RETURN(Index * idx, index());
  auto loc = idx->FindAny(id);
  if (!loc) return Err(Code::kNotFound, "blob {} is not in the index", id.Short());
  return LoadBlobAt(id, *loc);
}

Result<Bytes> Repository::LoadBlobAt(const crypto::Id& id, const BlobLocation& loc) {
  std::string name = PackName(loc.pack);
  auto sealed = storage_->GetRange(name, loc.offset, loc.length);
  if (!sealed.ok())
    return sealed.status().WithContext(fmt::format("read blob {} from pack {}", id.Short(),
                                                   loc.pack.Short()));
  auto plain = OpenBlob(key_.enc, key_.id, id, *sealed);
  if (!plain.ok()) return plain.status().WithContext(fmt::format("pack {}", loc.pack.Short()));
  return plain;
}

BlobWriter::BlobWriter(Repository& repo) : repo_(repo) {
  auto idx = repo.index();
  index_ = idx.ok() ? *idx : nullptr;
  if (!idx.ok()) error_ = idx.status();
}

BlobWriter::~BlobWriter() = default;

bool BlobWriter::Known(const crypto::Id& id) {
  std::lock_guard lock(mu_);
  return reserved_.count(id) || (index_ && index_->Has(id));
}

Result<bool> BlobWriter::Reserve(const crypto::Id& id) {
  std::lock_guard lock(mu_);
  if (!error_.ok()) return error_;
  if (reserved_.count(id) || index_->Has(id)) return false;
  reserved_.insert(id);
  return true;
}

Status BlobWriter::StoreReserved(BlobType type, const crypto::Id& id, ByteSpan plaintext) {
  thread_local Bytes sealed;
  sealed.clear();
  SealBlob(repo_.key().enc, id, plaintext, repo_.config().zstd_level, sealed);
  Status s = AddToPack(type, id, sealed, uint32_t(plaintext.size()), false);
  if (sealed.capacity() > (16u << 20)) Bytes().swap(sealed);
  return s;
}

Status BlobWriter::StoreReservedSealed(BlobType type, const crypto::Id& id, ByteSpan sealed,
                                       uint32_t raw_length) {
  return AddToPack(type, id, sealed, raw_length, false);
}

Status BlobWriter::AddToPack(BlobType type, const crypto::Id& id, ByteSpan sealed,
                             uint32_t raw_length, bool reserve) {
  std::unique_ptr<PackBuilder> full;
  {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
    if (reserve && !reserved_.insert(id).second) return Status::Ok();
    auto& open = open_[int(type)];
    if (!open)
      open = std::make_unique<PackBuilder>(
          type, repo_.config().pack_size + repo_.config().chunker.max_size + 4096);
    open->Add(id, sealed, raw_length);
    stats_.blobs_new++;
    stats_.bytes_new_raw += raw_length;
    stats_.bytes_new_stored += sealed.size();
    if (open->size() >= repo_.config().pack_size) full = std::move(open);
  }
  if (full) return WritePack(std::move(full));
  return Status::Ok();
}

void BlobWriter::Fail(const Status& s) {
  std::lock_guard lock(mu_);
  if (error_.ok()) error_ = s;
}

Result<bool> BlobWriter::Save(BlobType type, const crypto::Id& id, ByteSpan plaintext) {
  LB_ASSIGN_OR_RETURN(bool fresh, Reserve(id));
  if (!fresh) return false;
  LB_RETURN_IF_ERROR(StoreReserved(type, id, plaintext));
  return true;
}

Status BlobWriter::AddSealed(BlobType type, const crypto::Id& id, ByteSpan sealed,
                             uint32_t raw_length) {
  return AddToPack(type, id, sealed, raw_length, true);
}

Status BlobWriter::WritePack(std::unique_ptr<PackBuilder> pack) {
  std::vector<PackEntry> entries;
  BlobType type = pack->type();
  Bytes bytes = pack->Finish(repo_.key().enc, entries);
  pack.reset();
  crypto::Id pid = crypto::Sha256(bytes);
  const std::string hex = pid.Hex();
  Status s = repo_.storage().Put(PackName(pid), bytes, {.sha256_hex = hex});
  std::vector<IndexPack> to_index;
  {
    std::lock_guard lock(mu_);
    if (!s.ok()) {
      s = s.WithContext(fmt::format("upload pack '{}'", pid.Short()));
      if (error_.ok()) error_ = s;
      return s;
    }
    IndexPack ip{pid, type, std::move(entries)};
    index_->AddPack(ip);
    unindexed_.push_back(std::move(ip));
    stats_.packs++;
    if (unindexed_.size() >= kPacksPerIndexFile) to_index.swap(unindexed_);
  }
  if (!to_index.empty()) return WriteIndex(std::move(to_index));
  return Status::Ok();
}

Status BlobWriter::WriteIndex(std::vector<IndexPack> packs) {
  Bytes run = EncodeRun(packs);
  auto [id, sealed] = SealIndexFile(repo_.key(), run);
  const std::string hex = id.Hex();
  Status s = repo_.storage().Put(IndexName(id), sealed, {.sha256_hex = hex});
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    s = s.WithContext(fmt::format("upload index '{}'", id.Short()));
    if (error_.ok()) error_ = s;
    return s;
  }
  stats_.index_files++;
  return Status::Ok();
}

Status BlobWriter::Flush() {
  std::unique_ptr<PackBuilder> packs[3];
  {
    std::lock_guard lock(mu_);
    if (!error_.ok()) return error_;
    for (int t = 0; t < 3; ++t) packs[t] = std::move(open_[t]);
  }
  for (auto& p : packs)
    if (p && !p->empty()) LB_RETURN_IF_ERROR(WritePack(std::move(p)));
  std::vector<IndexPack> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(unindexed_);
  }
  if (!rest.empty()) LB_RETURN_IF_ERROR(WriteIndex(std::move(rest)));
  std::lock_guard lock(mu_);
  return error_;
}

WriterStats BlobWriter::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace lb::repo
