// Unit tests of Status, Result<T>, the error macros and the hex helpers.
#include "util/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string>

#include "util/bytes.h"

namespace lb {
namespace {

constexpr Code kAllCodes[] = {
    Code::kOk,
    Code::kNotFound,
    Code::kAlreadyExists,
    Code::kCorruption,
    Code::kInvalidArgument,
    Code::kFailedPrecondition,
    Code::kPermissionDenied,
    Code::kIo,
    Code::kUnavailable,
    Code::kCancelled,
    Code::kInternal,
    Code::kWrongKey,
    Code::kIncomplete,
};

// --- Status ---

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_FALSE(s.retryable());
}

TEST(StatusTest, ErrFormatsMessage) {
  Status s = Err(Code::kNotFound, "pack '{}' not found ({} bytes)", "ab12", 42);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "pack 'ab12' not found (42 bytes)");
  EXPECT_FALSE(s.retryable());
  EXPECT_TRUE(ErrRetryable(Code::kUnavailable, "connection reset").retryable());
}

TEST(StatusTest, ToStringPutsHintOnItsOwnLine) {
  Status s = Err(Code::kCorruption, "pack 'ab12': bad checksum");
  EXPECT_EQ(s.ToString(), "pack 'ab12': bad checksum");
  Status hinted = s.WithHint("run 'lifeboat check --repair'");
  EXPECT_EQ(hinted.ToString(), "pack 'ab12': bad checksum\nhint: run 'lifeboat check --repair'");
  EXPECT_EQ(hinted.hint(), "run 'lifeboat check --repair'");
  EXPECT_EQ(hinted.code(), Code::kCorruption);
  EXPECT_EQ(s.hint(), "") << "WithHint must return a copy";
}

TEST(StatusTest, WithContextPrependsAndKeepsTheRest) {
  Status s = ErrRetryable(Code::kUnavailable, "connection reset").WithHint("check the network");
  Status outer = s.WithContext("upload pack 'ab12'").WithContext("backup");
  EXPECT_EQ(outer.message(), "backup: upload pack 'ab12': connection reset");
  EXPECT_EQ(outer.code(), Code::kUnavailable);
  EXPECT_TRUE(outer.retryable());
  EXPECT_EQ(outer.hint(), "check the network");
  EXPECT_EQ(s.message(), "connection reset") << "WithContext must return a copy";
}

TEST(StatusTest, WithContextOnOkStaysOk) {
  Status s = Status::Ok().WithContext("anything");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, EveryCodeHasAName) {
  std::set<std::string_view> names;
  for (Code c : kAllCodes) {
    EXPECT_NE(CodeName(c), "unknown") << int(c);
    names.insert(CodeName(c));
  }
  EXPECT_EQ(names.size(), std::size(kAllCodes));
  EXPECT_EQ(CodeName(Code::kCorruption), "corruption");
}

// Exit codes are a documented CLI contract (docs/user-guide.md, "Exit codes"): scripts depend
// on them, so this test pins the exact numbers. Changing one is a breaking change.
TEST(StatusTest, ExitCodesAreStable) {
  EXPECT_EQ(ExitCodeFor(Code::kOk), 0);
  EXPECT_EQ(ExitCodeFor(Code::kInternal), 1);
  EXPECT_EQ(ExitCodeFor(Code::kInvalidArgument), 2);
  EXPECT_EQ(ExitCodeFor(Code::kIncomplete), 3);
  EXPECT_EQ(ExitCodeFor(Code::kWrongKey), 4);
  EXPECT_EQ(ExitCodeFor(Code::kNotFound), 5);
  EXPECT_EQ(ExitCodeFor(Code::kCorruption), 6);
  EXPECT_EQ(ExitCodeFor(Code::kFailedPrecondition), 7);
  EXPECT_EQ(ExitCodeFor(Code::kAlreadyExists), 8);
  EXPECT_EQ(ExitCodeFor(Code::kPermissionDenied), 9);
  EXPECT_EQ(ExitCodeFor(Code::kIo), 10);
  EXPECT_EQ(ExitCodeFor(Code::kUnavailable), 11);
  EXPECT_EQ(ExitCodeFor(Code::kCancelled), 130);
}

TEST(StatusTest, ExitCodesAreDistinct) {
  std::set<int> codes;
  for (Code c : kAllCodes) codes.insert(ExitCodeFor(c));
  EXPECT_EQ(codes.size(), std::size(kAllCodes));
}

TEST(StatusTest, ErrnoStatusMapsCommonErrors) {
  EXPECT_EQ(ErrnoStatus(ENOENT, "open 'x'").code(), Code::kNotFound);
  EXPECT_EQ(ErrnoStatus(EEXIST, "open 'x'").code(), Code::kAlreadyExists);
  EXPECT_EQ(ErrnoStatus(EACCES, "open 'x'").code(), Code::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EPERM, "open 'x'").code(), Code::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EIO, "read 'x'").code(), Code::kIo);
  EXPECT_FALSE(ErrnoStatus(EIO, "read 'x'").retryable());
  EXPECT_TRUE(ErrnoStatus(EINTR, "read 'x'").retryable());
  EXPECT_TRUE(ErrnoStatus(EAGAIN, "read 'x'").retryable());
  EXPECT_TRUE(ErrnoStatus(ETIMEDOUT, "read 'x'").retryable());
  Status full = ErrnoStatus(ENOSPC, "write 'x'");
  EXPECT_EQ(full.code(), Code::kIo);
  EXPECT_EQ(full.message().rfind("write 'x': ", 0), 0u) << full.message();
  EXPECT_NE(full.hint(), "");
  EXPECT_NE(full.ToString().find("\nhint: "), std::string::npos);
}

// --- Result ---

TEST(ResultTest, HoldsValue) {
  Result<std::string> r = std::string("value");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(bool(r));
  EXPECT_EQ(*r, "value");
  EXPECT_EQ(r->size(), 5u);
  EXPECT_TRUE(r.status().ok());
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "value");
}

TEST(ResultTest, HoldsError) {
  Result<int> r = Err(Code::kIo, "read 'x': broken");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(bool(r));
  EXPECT_EQ(r.status().code(), Code::kIo);
  EXPECT_EQ(r.status().message(), "read 'x': broken");
}

TEST(ResultTest, HoldsMoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

// --- Macros ---

Result<int> ParsePositive(int v, int& calls) {
  ++calls;
  if (v <= 0) return Err(Code::kInvalidArgument, "{} is not positive", v);
  return v;
}

Status CheckPositive(int v, int& calls) {
  ++calls;
  if (v <= 0) return Err(Code::kInvalidArgument, "{} is not positive", v);
  return Status::Ok();
}

Result<int> SumOfPositives(int a, int b, int& calls, bool& reached_end) {
  LB_ASSIGN_OR_RETURN(int x, ParsePositive(a, calls));
  LB_ASSIGN_OR_RETURN(int y, ParsePositive(b, calls));
  reached_end = true;
  return x + y;
}

Status CheckBoth(int a, int b, int& calls, bool& reached_end) {
  LB_RETURN_IF_ERROR(CheckPositive(a, calls));
  LB_RETURN_IF_ERROR(CheckPositive(b, calls));
  reached_end = true;
  return Status::Ok();
}

// LB_ASSIGN_OR_RETURN inside a function returning Status, and with a move-only value.
Status TakeOwnership(bool fail, std::unique_ptr<int>& out) {
  auto make = [&]() -> Result<std::unique_ptr<int>> {
    if (fail) return Err(Code::kNotFound, "nothing");
    return std::make_unique<int>(3);
  };
  LB_ASSIGN_OR_RETURN(out, make());
  return Status::Ok();
}

// LB_RETURN_IF_ERROR inside a function returning Result<T>.
Result<int> CheckedDouble(int v, int& calls) {
  LB_RETURN_IF_ERROR(CheckPositive(v, calls));
  return 2 * v;
}

TEST(MacroTest, AssignOrReturnPassesValuesThrough) {
  int calls = 0;
  bool reached_end = false;
  Result<int> r = SumOfPositives(2, 3, calls, reached_end);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(calls, 2) << "each expression evaluated exactly once";
  EXPECT_TRUE(reached_end);
}

TEST(MacroTest, AssignOrReturnReturnsFirstError) {
  int calls = 0;
  bool reached_end = false;
  Result<int> r = SumOfPositives(-1, 3, calls, reached_end);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "-1 is not positive");
  EXPECT_EQ(calls, 1) << "stops at the first error";
  EXPECT_FALSE(reached_end);
}

TEST(MacroTest, AssignOrReturnInStatusFunction) {
  std::unique_ptr<int> out;
  EXPECT_TRUE(TakeOwnership(false, out).ok());
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 3);
  std::unique_ptr<int> none;
  EXPECT_EQ(TakeOwnership(true, none).code(), Code::kNotFound);
  EXPECT_EQ(none, nullptr);
}

TEST(MacroTest, ReturnIfError) {
  int calls = 0;
  bool reached_end = false;
  EXPECT_TRUE(CheckBoth(1, 2, calls, reached_end).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(reached_end);

  calls = 0;
  reached_end = false;
  Status s = CheckBoth(0, 2, calls, reached_end);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "0 is not positive");
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(reached_end);

  calls = 0;
  Result<int> ok = CheckedDouble(4, calls);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 8);
  Result<int> bad = CheckedDouble(-4, calls);
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(calls, 2);
}

// --- Hex ---

TEST(HexTest, EncodeIsLowercase) {
  Bytes b = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "00017f80abff");
  EXPECT_EQ(HexEncode({}), "");
}

TEST(HexTest, DecodeRoundTripsAndAcceptsUppercase) {
  Bytes all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint8_t(i);
  Bytes decoded;
  ASSERT_TRUE(HexDecode(HexEncode(all), decoded));
  EXPECT_EQ(decoded, all);
  ASSERT_TRUE(HexDecode("ABcdEF", decoded));
  EXPECT_EQ(decoded, (Bytes{0xab, 0xcd, 0xef}));
  ASSERT_TRUE(HexDecode("", decoded));
  EXPECT_TRUE(decoded.empty());
}

TEST(HexTest, DecodeRejectsOddLengthAndNonHex) {
  Bytes out;
  // Includes the characters just outside each accepted range: '/' ':' '@' 'G' '`' 'g'.
  for (std::string_view bad : {"0", "abc", "zz", "0g", "g0", "0G", "G0", "/0", ":0", "@0", "`0",
                               " 00", "00 ", "0x00", "-1"}) {
    EXPECT_FALSE(HexDecode(bad, out)) << "'" << bad << "'";
  }
}

// --- Little-endian helpers ---

TEST(BytesTest, LittleEndianRoundTrip) {
  Bytes b;
  PutU16(b, 0x0102);
  PutU32(b, 0x03040506);
  PutU64(b, 0x0708090a0b0c0d0eull);
  EXPECT_EQ(HexEncode(b), "0201060504030e0d0c0b0a090807");
  EXPECT_EQ(GetU16(b.data()), 0x0102);
  EXPECT_EQ(GetU32(b.data() + 2), 0x03040506u);
  EXPECT_EQ(GetU64(b.data() + 6), 0x0708090a0b0c0d0eull);
  uint8_t raw[8];
  StoreU32(raw, 0xdeadbeef);
  EXPECT_EQ(GetU32(raw), 0xdeadbeefu);
  StoreU64(raw, 0xfedcba9876543210ull);
  EXPECT_EQ(GetU64(raw), 0xfedcba9876543210ull);
  EXPECT_EQ(AsString(AsBytes("text")), "text");
}

}  // namespace
}  // namespace lb
