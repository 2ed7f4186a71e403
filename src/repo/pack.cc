#include "repo/pack.h"

#include "util/compress.h"

namespace lb::repo {

namespace {
constexpr uint8_t kCompressionNone = 0;
constexpr uint8_t kCompressionZstd = 1;
constexpr char kHeaderAad[] = "lifeboat-pack-header";
constexpr uint32_t kHeaderMagic = 0x4b50424c;  // "LBPK"
constexpr size_t kHeaderEntrySize = 1 + 32 + 4 + 4 + 4;
}  // namespace

void SealBlob(const crypto::Key& enc, const crypto::Id& id, ByteSpan plaintext, int level,
              Bytes& out) {
  // One buffer: [nonce][compression][payload] is built in `out`, then encrypted in place.
  size_t base = out.size();
  out.resize(base + crypto::kNonceSize);
  out.push_back(kCompressionZstd);
  bool compressed = false;
  if (level > 0 && plaintext.size() >= 64) {
    ZstdCompressAppend(plaintext, level, out);
    compressed = out.size() - base - crypto::kNonceSize - 1 < plaintext.size();
  }
  if (!compressed) {
    out.resize(base + crypto::kNonceSize);
    out.push_back(kCompressionNone);
    out.insert(out.end(), plaintext.begin(), plaintext.end());
  }
  crypto::SealInPlace(enc, out, base, id.bytes);
}

namespace {
// The plaintext of an opened blob's [compression][payload], checked against its id.
Result<Bytes> DecodeBlobPayload(const crypto::Key& id_key, const crypto::Id& id,
                                const Bytes& inner) {
  if (inner.empty()) return Err(Code::kCorruption, "blob {}: empty payload", id.Short());
  Bytes plain;
  if (inner[0] == kCompressionNone) {
    plain.assign(inner.begin() + 1, inner.end());
  } else if (inner[0] == kCompressionZstd) {
    auto d = ZstdDecompress(ByteSpan(inner).subspan(1));
    if (!d.ok()) return d.status().WithContext(fmt::format("blob {}", id.Short()));
    plain = std::move(*d);
  } else {
    return Err(Code::kCorruption, "blob {}: unknown compression {}", id.Short(), inner[0]);
  }
  if (crypto::ContentId(id_key, plain) != id)
    return Err(Code::kCorruption, "blob {}: content does not match its id", id.Short());
  return plain;
}
}  // namespace

Result<Bytes> OpenBlob(const crypto::Key& enc, const crypto::Key& id_key, const crypto::Id& id,
                       ByteSpan sealed) {
  LB_ASSIGN_OR_RETURN(Bytes inner, crypto::Open(enc, sealed, id.bytes));
  return DecodeBlobPayload(id_key, id, inner);
}

Result<uint32_t> ResealBlob(const crypto::Key& from_enc, const crypto::Key& id_key,
                            const crypto::Key& to_enc, const crypto::Id& id, ByteSpan sealed,
                            Bytes& out) {
  auto inner = crypto::Open(from_enc, sealed, id.bytes);
  if (!inner.ok()) return inner.status().WithContext(fmt::format("blob {}", id.Short()));
  // Verified before it is sealed again: a copy must never carry damage under a new key.
  LB_ASSIGN_OR_RETURN(Bytes plain, DecodeBlobPayload(id_key, id, *inner));
  crypto::SealAppend(to_enc, *inner, id.bytes, out);
  return uint32_t(plain.size());
}

void PackBuilder::Add(const crypto::Id& id, ByteSpan sealed, uint32_t raw_length) {
  entries_.push_back({id, type_, uint32_t(buf_.size()), uint32_t(sealed.size()), raw_length});
  buf_.insert(buf_.end(), sealed.begin(), sealed.end());
}

Bytes PackBuilder::Finish(const crypto::Key& enc, std::vector<PackEntry>& entries) {
  Bytes header;
  PutU32(header, kHeaderMagic);
  header.push_back(1);  // version
  header.push_back(uint8_t(type_));
  PutU16(header, 0);
  PutU32(header, uint32_t(entries_.size()));
  for (const auto& e : entries_) {
    header.push_back(uint8_t(e.type));
    header.insert(header.end(), e.id.bytes.begin(), e.id.bytes.end());
    PutU32(header, e.offset);
    PutU32(header, e.length);
    PutU32(header, e.raw_length);
  }
  size_t before = buf_.size();
  crypto::SealAppend(enc, header, AsBytes(kHeaderAad), buf_);
  PutU32(buf_, uint32_t(buf_.size() - before));
  entries = std::move(entries_);
  entries_.clear();
  return std::move(buf_);
}

Result<uint32_t> PackHeaderLength(ByteSpan last4, uint64_t pack_size) {
  if (last4.size() < 4 || pack_size < 4 + crypto::kSealOverhead)
    return Err(Code::kCorruption, "pack too short ({} bytes)", pack_size);
  uint32_t len = GetU32(last4.data() + last4.size() - 4);
  if (len < crypto::kSealOverhead + 12 || len > pack_size - 4)
    return Err(Code::kCorruption, "pack trailer gives header length {} for a pack of {} bytes",
               len, pack_size);
  return len;
}

Result<std::vector<PackEntry>> ParsePackHeader(const crypto::Key& enc, ByteSpan tail,
                                               uint64_t pack_size) {
  LB_ASSIGN_OR_RETURN(uint32_t len, PackHeaderLength(tail, pack_size));
  if (tail.size() < uint64_t(len) + 4)
    return Err(Code::kInternal, "pack tail shorter than its header");
  ByteSpan sealed = tail.subspan(tail.size() - 4 - len, len);
  auto header = crypto::Open(enc, sealed, AsBytes(kHeaderAad));
  if (!header.ok()) return header.status().WithContext("pack header");
  const Bytes& h = *header;
  if (h.size() < 12 || GetU32(h.data()) != kHeaderMagic || h[4] != 1)
    return Err(Code::kCorruption, "pack header: bad magic or version");
  uint32_t count = GetU32(h.data() + 8);
  if (h.size() != 12 + uint64_t(count) * kHeaderEntrySize)
    return Err(Code::kCorruption, "pack header: {} bytes for {} entries", h.size(), count);
  std::vector<PackEntry> out(count);
  uint64_t data_end = pack_size - 4 - len;
  const uint8_t* p = h.data() + 12;
  for (uint32_t i = 0; i < count; ++i, p += kHeaderEntrySize) {
    PackEntry& e = out[i];
    e.type = BlobType(p[0]);
    if (e.type != BlobType::kData && e.type != BlobType::kTree)
      return Err(Code::kCorruption, "pack header: bad blob type {}", p[0]);
    std::memcpy(e.id.bytes.data(), p + 1, 32);
    e.offset = GetU32(p + 33);
    e.length = GetU32(p + 37);
    e.raw_length = GetU32(p + 41);
    if (uint64_t(e.offset) + e.length > data_end)
      return Err(Code::kCorruption, "pack header: blob {} lies outside the pack", e.id.Short());
  }
  return out;
}

}  // namespace lb::repo
