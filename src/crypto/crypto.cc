#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <memory>

namespace lb::crypto {

Key::~Key() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

Key Key::Random() {
  Key k;
  RandomBytes(k.bytes);
  return k;
}

bool Id::IsZero() const {
  for (uint8_t b : bytes)
    if (b) return false;
  return true;
}

bool Id::Parse(std::string_view hex, Id& out) {
  Bytes b;
  if (hex.size() != 64 || !HexDecode(hex, b)) return false;
  std::memcpy(out.bytes.data(), b.data(), 32);
  return true;
}

void RandomBytes(std::span<uint8_t> out) {
  // RAND_bytes only fails when the OS entropy source is broken; continuing would produce
  // reusable nonces and keys, so this is the one place that aborts.
  if (RAND_bytes(out.data(), int(out.size())) != 1) std::abort();
}

namespace {
struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// EVP_CIPHER fetched once; contexts are cached per thread because creating one costs
// more than sealing a small blob.
EVP_CIPHER_CTX* ThreadCtx() {
  thread_local CipherCtx ctx(EVP_CIPHER_CTX_new());
  return ctx.get();
}
}  // namespace

void SealAppend(const Key& key, ByteSpan plaintext, ByteSpan aad, Bytes& out) {
  size_t base = out.size();
  out.resize(base + kSealOverhead + plaintext.size());
  uint8_t* nonce = out.data() + base;
  uint8_t* ct = nonce + kNonceSize;
  uint8_t* tag = ct + plaintext.size();
  RandomBytes({nonce, kNonceSize});
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  int len = 0;
  bool ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.bytes.data(), nonce) == 1;
  if (ok && !aad.empty())
    ok = EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), int(aad.size())) == 1;
  if (ok && !plaintext.empty())
    ok = EVP_EncryptUpdate(ctx, ct, &len, plaintext.data(), int(plaintext.size())) == 1;
  if (ok) ok = EVP_EncryptFinal_ex(ctx, ct + plaintext.size(), &len) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, tag) == 1;
  if (!ok) std::abort();  // only on programmer error (bad sizes) or a broken libcrypto
}

void SealRaw(const Key& key, uint8_t* buf, size_t len, ByteSpan aad) {
  uint8_t* nonce = buf;
  RandomBytes({nonce, kNonceSize});
  uint8_t* data = nonce + kNonceSize;
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  int out_len = 0;
  bool ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.bytes.data(), nonce) == 1;
  if (ok && !aad.empty())
    ok = EVP_EncryptUpdate(ctx, nullptr, &out_len, aad.data(), int(aad.size())) == 1;
  // GCM is a stream mode: OpenSSL allows the output to be the input.
  if (ok && len) ok = EVP_EncryptUpdate(ctx, data, &out_len, data, int(len)) == 1;
  if (ok) ok = EVP_EncryptFinal_ex(ctx, data + len, &out_len) == 1;
  if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, data + len) == 1;
  if (!ok) std::abort();
}

void SealInPlace(const Key& key, Bytes& buf, size_t pos, ByteSpan aad) {
  if (buf.size() < pos + kNonceSize) std::abort();  // programmer error
  size_t len = buf.size() - pos - kNonceSize;
  buf.resize(buf.size() + kTagSize);
  SealRaw(key, buf.data() + pos, len, aad);
}

Result<Bytes> Open(const Key& key, ByteSpan sealed, ByteSpan aad) {
  if (sealed.size() < kSealOverhead)
    return Err(Code::kCorruption, "encrypted object too short ({} bytes)", sealed.size());
  const uint8_t* nonce = sealed.data();
  const uint8_t* ct = nonce + kNonceSize;
  size_t ct_len = sealed.size() - kSealOverhead;
  const uint8_t* tag = ct + ct_len;
  Bytes out(ct_len);
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  int len = 0;
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.bytes.data(), nonce) == 1;
  if (ok && !aad.empty())
    ok = EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), int(aad.size())) == 1;
  if (ok && ct_len) ok = EVP_DecryptUpdate(ctx, out.data(), &len, ct, int(ct_len)) == 1;
  if (ok)
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, const_cast<uint8_t*>(tag)) == 1;
  if (ok) ok = EVP_DecryptFinal_ex(ctx, out.data() + ct_len, &len) == 1;
  if (!ok) return Err(Code::kCorruption, "authentication failed (wrong key or damaged data)");
  return out;
}

Id ContentId(const Key& id_key, ByteSpan data) {
  Id id;
  unsigned int len = 32;
  HMAC(EVP_sha256(), id_key.bytes.data(), int(id_key.bytes.size()), data.data(), data.size(),
       id.bytes.data(), &len);
  return id;
}

Id Sha256(ByteSpan data) {
  Id id;
  SHA256(data.data(), data.size(), id.bytes.data());
  return id;
}

Result<Key> DeriveKey(std::string_view passphrase, const KdfParams& p) {
  if (p.n < 2 || (p.n & (p.n - 1)) != 0 || p.r == 0 || p.p == 0 || p.salt.size() < 16)
    return Err(Code::kInvalidArgument, "invalid key derivation parameters");
  Key key;
  uint64_t maxmem = 128ull * p.n * p.r * p.p + (64ull << 20);
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), p.salt.data(), p.salt.size(), p.n,
                     p.r, p.p, maxmem, key.bytes.data(), key.bytes.size()) != 1)
    return Err(Code::kInternal, "scrypt key derivation failed");
  return key;
}

bool Equal(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace lb::crypto
