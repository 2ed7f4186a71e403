// Cryptographic primitives of the repository: AEAD (AES-256-GCM), keyed content ids
// (HMAC-SHA256), plain SHA-256, memory-hard key derivation (scrypt) and randomness.
// All from OpenSSL 3; formats are in docs/repository-format.md ("Encryption").
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/status.h"

namespace lb::crypto {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;

// A 256-bit secret. Wiped when destroyed.
struct Key {
  std::array<uint8_t, kKeySize> bytes{};
  Key() = default;
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  ~Key();
  static Key Random();
};

// A 32-byte object or blob id.
struct Id {
  std::array<uint8_t, 32> bytes{};
  auto operator<=>(const Id&) const = default;
  std::string Hex() const { return HexEncode(bytes); }
  std::string Short() const { return Hex().substr(0, 8); }
  bool IsZero() const;
  static bool Parse(std::string_view hex, Id& out);
};
struct IdHash {
  size_t operator()(const Id& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return h;
  }
};

// Encrypts: output = nonce(12, random) || ciphertext || tag(16). `aad` is authenticated,
// not stored. Appends to `out` (which may already hold data).
void SealAppend(const Key& key, ByteSpan plaintext, ByteSpan aad, Bytes& out);
inline Bytes Seal(const Key& key, ByteSpan plaintext, ByteSpan aad = {}) {
  Bytes out;
  SealAppend(key, plaintext, aad, out);
  return out;
}
// Encrypts in place: buf[pos, pos+12) is overwritten with a random nonce, buf[pos+12, end)
// is the plaintext and becomes ciphertext, and the 16-byte tag is appended. Same output
// format as SealAppend, without a second buffer.
void SealInPlace(const Key& key, Bytes& buf, size_t pos, ByteSpan aad);
// The same on raw memory: buf[0, 12) receives the nonce, buf[12, 12+len) is encrypted in
// place and the tag is written to buf[12+len, 12+len+16), which the caller provides.
void SealRaw(const Key& key, uint8_t* buf, size_t len, ByteSpan aad);
// Decrypts and authenticates; kCorruption ("authentication failed") on any mismatch.
Result<Bytes> Open(const Key& key, ByteSpan sealed, ByteSpan aad = {});

// Keyed content id: HMAC-SHA256(id_key, data). Keyed so ids do not reveal plaintext.
Id ContentId(const Key& id_key, ByteSpan data);
// SHA-256 of data (ids of objects whose bytes are already ciphertext, e.g. packs).
Id Sha256(ByteSpan data);

struct KdfParams {
  uint64_t n = 1u << 16;  // scrypt CPU/memory cost; memory = 128 * n * r bytes (64 MiB)
  uint32_t r = 8;
  uint32_t p = 1;
  Bytes salt;             // 32 random bytes
};
// Derives a 256-bit key from a passphrase with scrypt. kInvalidArgument for bad params.
Result<Key> DeriveKey(std::string_view passphrase, const KdfParams& params);

void RandomBytes(std::span<uint8_t> out);

// Constant-time comparison.
bool Equal(ByteSpan a, ByteSpan b);

}  // namespace lb::crypto
