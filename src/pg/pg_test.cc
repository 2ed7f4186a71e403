// Unit tests of the PostgreSQL layer's pure parts: page checksums, WAL names and LSNs,
// target times, relation file names. The real-cluster tests are in tests/pg/.
#include <gtest/gtest.h>

#include <cstring>

#include "pg/checksum.h"
#include "pg/pg_restore.h"
#include "pg/wal.h"

namespace lb::pg {
namespace {

TEST(WalNames, ParseFormatAndNext) {
  SegmentName s;
  ASSERT_TRUE(ParseSegmentName("00000001000000A2000000FF", s));
  EXPECT_EQ(s.tli, 1u);
  EXPECT_EQ(s.log, 0xA2u);
  EXPECT_EQ(s.seg, 0xFFu);
  EXPECT_EQ(FormatSegmentName(NextSegment(s, 16u << 20)), "00000001000000A300000000");
  EXPECT_EQ(FormatSegmentName(NextSegment(s, 1u << 30)), "00000001000000A300000000");
  SegmentName small{2, 0, 0x3F};
  EXPECT_EQ(FormatSegmentName(NextSegment(small, 64u << 20)), "000000020000000100000000");
  EXPECT_FALSE(ParseSegmentName("00000001000000A2000000F", s));
  EXPECT_FALSE(ParseSegmentName("00000001000000a2000000FF", s));
  EXPECT_FALSE(ParseSegmentName("00000002.history", s));
}

TEST(WalNames, LsnArithmetic) {
  uint64_t lsn = 0;
  ASSERT_TRUE(ParseLsn("16/B374D848", lsn));
  EXPECT_EQ(lsn, 0x16B374D848ull);
  EXPECT_EQ(FormatLsn(lsn), "16/B374D848");
  SegmentName s = SegmentOfLsn(3, lsn, 16u << 20);
  EXPECT_EQ(FormatSegmentName(s), "0000000300000016000000B3");
  EXPECT_EQ(SegmentStartLsn(s, 16u << 20), 0x16B3000000ull);
  EXPECT_FALSE(ParseLsn("16B374D848", lsn));
  EXPECT_FALSE(ParseLsn("1/2/3", lsn));
  EXPECT_FALSE(ParseLsn("100000000/0", lsn));
}

TEST(WalNames, ObjectNames) {
  EXPECT_EQ(WalObjectName("main", "000000010000000000000002"),
            "wal/main/0000000100000000/000000010000000000000002");
  EXPECT_EQ(WalObjectName("main", "00000002.history"), "wal/main/meta/00000002.history");
}

TEST(TargetTime, Formats) {
  int64_t a = 0, b = 0, c = 0, d = 0;
  ASSERT_TRUE(ParseTargetTime("2026-11-24 20:40:01.123456+00", a));
  ASSERT_TRUE(ParseTargetTime("2026-11-24T20:40:01.123456Z", b));
  ASSERT_TRUE(ParseTargetTime("2026-11-24 22:40:01.123456+02:00", c));
  ASSERT_TRUE(ParseTargetTime("2026-11-24 20:40:01.123456", d));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, d);
  EXPECT_EQ(a % 1000000000, 123456000);
  EXPECT_FALSE(ParseTargetTime("yesterday", a));
  EXPECT_FALSE(ParseTargetTime("2026-11-24 20:40:01 CEST", a));
}

TEST(RelationFiles, Names) {
  uint32_t seg = 9;
  EXPECT_TRUE(IsRelationFile("base/5/1259", &seg));
  EXPECT_EQ(seg, 0u);
  EXPECT_TRUE(IsRelationFile("base/16384/16390.12", &seg));
  EXPECT_EQ(seg, 12u);
  EXPECT_TRUE(IsRelationFile("base/16384/16390_fsm"));
  EXPECT_TRUE(IsRelationFile("base/16384/16390_vm.1"));
  EXPECT_TRUE(IsRelationFile("global/1262"));
  EXPECT_TRUE(IsRelationFile("pg_tblspc/16400/PG_15_202209061/16384/16401"));
  EXPECT_TRUE(IsRelationFile("PG_15_202209061/16384/16401"));
  EXPECT_FALSE(IsRelationFile("base/5/pg_filenode.map"));
  EXPECT_FALSE(IsRelationFile("global/pg_control"));
  EXPECT_FALSE(IsRelationFile("base/5/PG_VERSION"));
  EXPECT_FALSE(IsRelationFile("pg_xact/0000"));
  EXPECT_FALSE(IsRelationFile("base/16384/16390.x"));
}

TEST(PageChecksum, NewPagesAndRecentPagesAreNotChecked) {
  uint8_t page[kPageSize] = {};
  EXPECT_EQ(VerifyPage(page, 0, 100, nullptr, nullptr), PageVerdict::kNew);
  page[4] = 200;  // lsn lo = 200 >= start 100
  EXPECT_EQ(VerifyPage(page, 0, 100, nullptr, nullptr), PageVerdict::kSkippedLsn);
}

TEST(PageChecksum, DetectsAFlippedBitAndDependsOnBlock) {
  uint8_t page[kPageSize];
  for (size_t i = 0; i < kPageSize; ++i) page[i] = uint8_t(i * 7 + 3);
  std::memset(page, 0, 8);  // lsn 0
  uint16_t c = PageChecksum(page, 7);
  std::memcpy(page + 8, &c, 2);
  EXPECT_EQ(VerifyPage(page, 7, 1000, nullptr, nullptr), PageVerdict::kOk);
  EXPECT_EQ(VerifyPage(page, 8, 1000, nullptr, nullptr), PageVerdict::kBad);
  page[5000] ^= 1;
  EXPECT_EQ(VerifyPage(page, 7, 1000, nullptr, nullptr), PageVerdict::kBad);
  EXPECT_NE(c, 0);  // PostgreSQL never stores 0
}

}  // namespace
}  // namespace lb::pg
