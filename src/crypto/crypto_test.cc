// Unit tests of the crypto primitives: AEAD round trips and tamper detection, known-answer
// vectors computed independently (openssl CLI, the GCM specification), and
// parameter checks of the key derivation.
#include "crypto/crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace lb::crypto {
namespace {

// Key bytes 0x00, 0x01, ..., 0x1f.
Key CountingKey() {
  Key k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = uint8_t(i);
  return k;
}

Bytes FromHex(std::string_view hex) {
  Bytes out;
  EXPECT_TRUE(HexDecode(hex, out)) << hex;
  return out;
}

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 131 + (i >> 8));
  return b;
}

// --- Seal / Open ---

TEST(SealTest, RoundTripsEmptyOneByteAndLarge) {
  Key key = Key::Random();
  for (size_t n : {size_t{0}, size_t{1}, size_t{5} << 20}) {
    SCOPED_TRACE(n);
    Bytes plain = Pattern(n);
    Bytes sealed = Seal(key, plain);
    ASSERT_EQ(sealed.size(), n + kSealOverhead);
    Result<Bytes> opened = Open(key, sealed);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, plain);
  }
}

TEST(SealTest, OverheadIsNoncePlusTag) {
  EXPECT_EQ(kSealOverhead, 28u);
  Key key = Key::Random();
  EXPECT_EQ(Seal(key, AsBytes("hello")).size(), 5u + 28u);
}

TEST(SealTest, RoundTripsWithAad) {
  Key key = Key::Random();
  Bytes plain = Pattern(1000);
  Bytes sealed = Seal(key, plain, AsBytes("pack ab12"));
  Result<Bytes> opened = Open(key, sealed, AsBytes("pack ab12"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, plain);
}

TEST(SealTest, CiphertextDoesNotContainPlaintext) {
  Key key = Key::Random();
  std::string plain(256, 'A');
  Bytes sealed = Seal(key, AsBytes(plain));
  EXPECT_EQ(AsString(sealed).find("AAAAAAAA"), std::string_view::npos);
}

TEST(SealTest, SameInputSealsDifferentlyEachTime) {
  Key key = Key::Random();
  Bytes plain = Pattern(64);
  // Hex strings, not Bytes: GCC 12 warns falsely (-Wstringop-overread) on set<vector<uint8_t>>.
  std::set<std::string> seen;
  std::set<std::string> nonces;
  for (int i = 0; i < 16; ++i) {
    Bytes sealed = Seal(key, plain);
    nonces.insert(HexEncode(ByteSpan(sealed).first(kNonceSize)));
    seen.insert(HexEncode(sealed));
  }
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_EQ(nonces.size(), 16u);
}

TEST(SealTest, AppendKeepsExistingPrefix) {
  Key key = Key::Random();
  Bytes out = {1, 2, 3};
  Bytes plain = Pattern(100);
  SealAppend(key, plain, {}, out);
  ASSERT_EQ(out.size(), 3 + 100 + kSealOverhead);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[2], 3);
  Result<Bytes> opened = Open(key, ByteSpan(out).subspan(3));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, plain);
}

TEST(OpenTest, FlippingAnyByteIsCorruption) {
  Key key = Key::Random();
  Bytes aad = {9, 8, 7};
  for (size_t n : {size_t{0}, size_t{64}}) {
    Bytes sealed = Seal(key, Pattern(n), aad);
    // Covers nonce [0, 12), ciphertext [12, 12 + n) and tag [12 + n, 28 + n).
    for (size_t i = 0; i < sealed.size(); ++i) {
      for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
        Bytes damaged = sealed;
        damaged[i] ^= flip;
        Result<Bytes> opened = Open(key, damaged, aad);
        ASSERT_FALSE(opened.ok()) << "n=" << n << " byte " << i;
        EXPECT_EQ(opened.status().code(), Code::kCorruption);
      }
    }
    // The undamaged object still opens: the failures above left no state behind.
    EXPECT_TRUE(Open(key, sealed, aad).ok());
  }
}

TEST(OpenTest, WrongKeyIsCorruption) {
  Key key = CountingKey();
  Key other = CountingKey();
  other.bytes[31] ^= 1;
  Bytes sealed = Seal(key, AsBytes("secret"));
  Result<Bytes> opened = Open(other, sealed);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
}

TEST(OpenTest, WrongOrMissingAadIsCorruption) {
  Key key = Key::Random();
  Bytes sealed = Seal(key, AsBytes("secret"), AsBytes("id-1"));
  for (std::string_view aad : {"id-2", "id-", "id-1x", ""}) {
    Result<Bytes> opened = Open(key, sealed, AsBytes(aad));
    ASSERT_FALSE(opened.ok()) << "aad '" << aad << "'";
    EXPECT_EQ(opened.status().code(), Code::kCorruption);
  }
  Bytes no_aad = Seal(key, AsBytes("secret"));
  Result<Bytes> opened = Open(key, no_aad, AsBytes("id-1"));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Code::kCorruption);
}

TEST(OpenTest, AadOfAnyLengthIsAuthenticated) {
  Key key = Key::Random();
  for (size_t n = 1; n <= 40; ++n) {
    Bytes aad = Pattern(n);
    Bytes sealed = Seal(key, AsBytes("secret"), aad);
    EXPECT_TRUE(Open(key, sealed, aad).ok()) << "aad of " << n << " bytes";
    Bytes other = aad;
    other.back() ^= 1;
    EXPECT_EQ(Open(key, sealed, other).status().code(), Code::kCorruption) << n;
    EXPECT_EQ(Open(key, sealed).status().code(), Code::kCorruption) << n;
  }
}

TEST(OpenTest, TruncatedInputIsCorruption) {
  Key key = Key::Random();
  Bytes sealed = Seal(key, AsBytes("0123456789"));
  for (size_t n = 0; n < sealed.size(); ++n) {
    // Heap copy of exactly n bytes so ASan sees any read past the end.
    Bytes prefix(sealed.begin(), sealed.begin() + ptrdiff_t(n));
    Result<Bytes> opened = Open(key, prefix);
    ASSERT_FALSE(opened.ok()) << n << " bytes";
    EXPECT_EQ(opened.status().code(), Code::kCorruption);
  }
  Bytes garbage(kSealOverhead, 0);
  EXPECT_EQ(Open(key, garbage).status().code(), Code::kCorruption);
}

// AES-256-GCM test case 16 of McGrew & Viega, "The Galois/Counter Mode of Operation",
// laid out as nonce || ciphertext || tag; checks the wire format against an outside source.
TEST(OpenTest, KnownAnswerGcmSpecTestCase16) {
  Key key;
  Bytes k = FromHex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  std::copy(k.begin(), k.end(), key.bytes.begin());
  Bytes sealed = FromHex(
      "cafebabefacedbaddecaf888"
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b");
  Bytes aad = FromHex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  Result<Bytes> opened = Open(key, sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(HexEncode(*opened),
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  EXPECT_EQ(Open(key, sealed).status().code(), Code::kCorruption);
}

// Cipher contexts are cached per thread; concurrent use must not mix them up.
TEST(SealTest, ConcurrentSealAndOpen) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      Key key = Key::Random();
      for (int i = 0; i < 200; ++i) {
        Bytes plain = Pattern(size_t(t * 1000 + i));
        Result<Bytes> opened = Open(key, Seal(key, plain, AsBytes("aad")), AsBytes("aad"));
        if (!opened.ok() || *opened != plain) ++failures;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- Hashes ---

// Expected values from:
//   printf lifeboat | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f
TEST(ContentIdTest, KnownAnswerHmacSha256) {
  Key key = CountingKey();
  EXPECT_EQ(ContentId(key, AsBytes("lifeboat")).Hex(),
            "232def170ce03144d5752ed135ebde9756c95b85e4e9e53fa034aab2898f94b8");
  EXPECT_EQ(ContentId(key, {}).Hex(),
            "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb");
}

TEST(ContentIdTest, DependsOnKey) {
  Key a = CountingKey();
  Key b = CountingKey();
  b.bytes[0] = 0xff;
  EXPECT_NE(ContentId(a, AsBytes("lifeboat")), ContentId(b, AsBytes("lifeboat")));
  EXPECT_NE(ContentId(a, AsBytes("lifeboat")), Sha256(AsBytes("lifeboat")));
}

TEST(Sha256Test, KnownAnswers) {
  // FIPS 180-2 appendix B.1, and the digest of the empty string.
  EXPECT_EQ(Sha256(AsBytes("abc")).Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256({}).Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// --- Key derivation ---

KdfParams SmallParams(uint8_t salt_byte = 0) {
  return KdfParams{.n = 1u << 10, .r = 8, .p = 1, .salt = Bytes(32, salt_byte)};
}

TEST(DeriveKeyTest, KnownAnswerScrypt) {
  // openssl kdf -keylen 32 -kdfopt pass:"correct horse" -kdfopt hexsalt:000102...1f
  //   -kdfopt n:1024 -kdfopt r:8 -kdfopt p:1 SCRYPT
  KdfParams params = SmallParams();
  for (size_t i = 0; i < 32; ++i) params.salt[i] = uint8_t(i);
  Result<Key> key = DeriveKey("correct horse", params);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(HexEncode(key->bytes),
            "1fa1348854818a9e4e9037d04148d79bf80ee7ccc89564199957a2a783532f80");
}

TEST(DeriveKeyTest, DeterministicForSameInputs) {
  Result<Key> a = DeriveKey("passphrase", SmallParams(7));
  Result<Key> b = DeriveKey("passphrase", SmallParams(7));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->bytes, b->bytes);
}

TEST(DeriveKeyTest, DiffersForSaltPassphraseAndCost) {
  Result<Key> base = DeriveKey("passphrase", SmallParams(7));
  Result<Key> other_salt = DeriveKey("passphrase", SmallParams(8));
  Result<Key> other_pass = DeriveKey("passphrasf", SmallParams(7));
  KdfParams cheaper = SmallParams(7);
  cheaper.n = 1u << 9;
  Result<Key> other_n = DeriveKey("passphrase", cheaper);
  ASSERT_TRUE(base.ok() && other_salt.ok() && other_pass.ok() && other_n.ok());
  EXPECT_NE(base->bytes, other_salt->bytes);
  EXPECT_NE(base->bytes, other_pass->bytes);
  EXPECT_NE(base->bytes, other_n->bytes);
}

TEST(DeriveKeyTest, AcceptsEmptyPassphraseAndMinimumSalt) {
  KdfParams params = SmallParams();
  params.salt.resize(16);
  EXPECT_TRUE(DeriveKey("", params).ok());
}

TEST(DeriveKeyTest, RejectsBadParameters) {
  struct Case {
    const char* name;
    KdfParams params;
  };
  Case cases[] = {
      {"n not a power of two", {.n = 1000, .r = 8, .p = 1, .salt = Bytes(32)}},
      {"n = 0", {.n = 0, .r = 8, .p = 1, .salt = Bytes(32)}},
      {"n = 1", {.n = 1, .r = 8, .p = 1, .salt = Bytes(32)}},
      {"r = 0", {.n = 1024, .r = 0, .p = 1, .salt = Bytes(32)}},
      {"p = 0", {.n = 1024, .r = 8, .p = 0, .salt = Bytes(32)}},
      {"salt of 15 bytes", {.n = 1024, .r = 8, .p = 1, .salt = Bytes(15)}},
      {"no salt", {.n = 1024, .r = 8, .p = 1, .salt = {}}},
  };
  for (const Case& c : cases) {
    Result<Key> key = DeriveKey("passphrase", c.params);
    ASSERT_FALSE(key.ok()) << c.name;
    EXPECT_EQ(key.status().code(), Code::kInvalidArgument) << c.name;
  }
}

// --- Id, Equal, randomness ---

TEST(IdTest, HexParseRoundTrip) {
  Id id = Sha256(AsBytes("abc"));
  Id parsed;
  ASSERT_TRUE(Id::Parse(id.Hex(), parsed));
  EXPECT_EQ(parsed, id);
  EXPECT_EQ(id.Short(), "ba7816bf");
  std::string upper = id.Hex();
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  Id parsed_upper;
  ASSERT_TRUE(Id::Parse(upper, parsed_upper));
  EXPECT_EQ(parsed_upper, id);
}

TEST(IdTest, ParseRejectsBadInputAndLeavesOutputAlone) {
  std::string good = Sha256(AsBytes("abc")).Hex();
  std::string bad_digit = good;
  bad_digit[10] = 'g';
  std::string inner_space = good;
  inner_space[63] = ' ';
  for (const std::string& s : {std::string(), good.substr(0, 62), good.substr(0, 63), good + "00",
                               good + "0", bad_digit, inner_space, std::string(64, 'z')}) {
    Id out = Sha256(AsBytes("keep"));
    Id before = out;
    EXPECT_FALSE(Id::Parse(s, out)) << "'" << s << "'";
    EXPECT_EQ(out, before) << "'" << s << "'";
  }
}

TEST(IdTest, IsZeroAndOrdering) {
  Id zero;
  EXPECT_TRUE(zero.IsZero());
  Id one;
  one.bytes[31] = 1;
  EXPECT_FALSE(one.IsZero());
  Id high;
  high.bytes[0] = 1;
  EXPECT_LT(zero, one);
  EXPECT_LT(one, high);
  EXPECT_NE(IdHash{}(one), IdHash{}(high));
}

TEST(EqualTest, ComparesContentAndLength) {
  Bytes a = {1, 2, 3};
  Bytes b = {1, 2, 3};
  Bytes c = {1, 2, 4};
  Bytes d = {1, 2};
  EXPECT_TRUE(Equal(a, b));
  EXPECT_FALSE(Equal(a, c));
  EXPECT_FALSE(Equal(a, d));
  EXPECT_FALSE(Equal(d, a));
  EXPECT_TRUE(Equal({}, {}));
}

TEST(RandomTest, KeysAndBytesDiffer) {
  EXPECT_NE(Key::Random().bytes, Key::Random().bytes);
  Bytes a(32);
  Bytes b(32);
  RandomBytes(a);
  RandomBytes(b);
  EXPECT_NE(a, b);
  RandomBytes({});
}

}  // namespace
}  // namespace lb::crypto
