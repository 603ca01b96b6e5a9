#include "torchless/server/stop_strings.h"

#include <gtest/gtest.h>

namespace torchless::server {
namespace {

TEST(StopStrings, EndsTheOutputJustBeforeAStopSplitAcrossPieces) {
  StopStrings stops({"END", "\n\n"});
  std::string out;
  out += stops.feed("Hello E");
  EXPECT_EQ(out, "Hello ");  // "E" could start "END": held back
  out += stops.feed("N");
  EXPECT_EQ(out, "Hello ");
  out += stops.feed("Dless");
  EXPECT_TRUE(stops.stopped());
  EXPECT_EQ(out, "Hello ");
  EXPECT_EQ(stops.feed("more"), "");
  EXPECT_EQ(stops.flush(), "");
}

TEST(StopStrings, ReleasesHeldTextThatTurnsOutNotToBeAStop) {
  StopStrings stops({"END"});
  std::string out = stops.feed("a EN");
  out += stops.feed("x");
  EXPECT_EQ(out, "a ENx");
  out += stops.feed("E");
  out += stops.flush();
  EXPECT_EQ(out, "a ENxE");
  EXPECT_FALSE(stops.stopped());
}

TEST(StopStrings, TheEarliestStopWins) {
  StopStrings stops({"cd", "b"});
  EXPECT_EQ(stops.feed("abcd"), "a");
  EXPECT_TRUE(stops.stopped());
}

TEST(StopStrings, KeepsMultiByteCharactersWhole) {
  StopStrings stops({"\xc3\xa9t\xc3\xa9"});  // "été"
  std::string out = stops.feed("caf\xc3\xa9");
  EXPECT_EQ(out, "caf");  // "é" could start the stop
  out += stops.feed("!");
  EXPECT_EQ(out, "caf\xc3\xa9!");
}

TEST(StopStrings, WithoutStopsEverythingPassesAtOnce) {
  StopStrings stops({});
  EXPECT_EQ(stops.feed("abc"), "abc");
  EXPECT_EQ(stops.flush(), "");
}

}  // namespace
}  // namespace torchless::server
