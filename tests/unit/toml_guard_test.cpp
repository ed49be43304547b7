// The pass before toml++ (core/src/toml_guard.cpp): non-ASCII text where toml++ 3.3
// would reach undefined behaviour is a clean error or is read with the same value;
// non-ASCII text in strings and comments is untouched.
#include "spinout/session_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace spinout;

namespace {

std::string goodSession() {
    std::ifstream in(std::filesystem::path(SPINOUT_SOURCE_DIR) / "tests/fixtures/bad/good.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// `text` inserted into the [session] table of a good session, after its name.
std::string withSessionLines(const std::string& text) {
    auto s = goodSession();
    const auto at = s.find("uri =");
    return s.insert(at, text);
}

std::string errorOf(const std::string& text) {
    try {
        parseSessionText(text, "s.toml");
    } catch (const SessionFileError& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST(TomlGuard, NonAsciiOutsideStringsIsASyntaxErrorWithItsPlace) {
    // the 3 bytes found by fuzzing (U+FE7F), then characters toml++ tests as whitespace
    EXPECT_EQ(errorOf("\xEF\xB9\xBF"),
              "s.toml:1:1: TOML syntax error: '\xEF\xB9\xBF' (U+FE7F) outside a string or comment");
    EXPECT_EQ(errorOf(withSessionLines("doc = \"x\" \xC3\xA9\n")),
              "s.toml:3:11: TOML syntax error: '\xC3\xA9' (U+00E9) outside a string or comment");
    EXPECT_NE(errorOf(withSessionLines("\xE3\x80\x81 = 1\n")).find("s.toml:3:1: "),
              std::string::npos);
    EXPECT_NE(errorOf(withSessionLines("doc = \"\"\"\\\xC2\xA7\"\"\"\n"))
                  .find("s.toml:3:11: TOML syntax error: '\xC2\xA7' (U+00A7) after '\\'"),
              std::string::npos);
    EXPECT_NE(errorOf(withSessionLines("doc = 'x' \xFF\n")).find("byte 0xFF outside"),
              std::string::npos);
}

// Found by fuzzing: toml++ scans a number or date up to a value terminator, quotes
// included, and skips spaces after any backslash in a """string""".
TEST(TomlGuard, NonAsciiWhereTomlxxScansPastAQuote) {
    EXPECT_NE(errorOf(withSessionLines("ksmps_x = 1\"\xC3\xA9\"\n"))
                  .find("s.toml:3:13: TOML syntax error: '\xC3\xA9' (U+00E9) in a number or date"),
              std::string::npos)
        << errorOf(withSessionLines("ksmps_x = 1\"\xC3\xA9\"\n"));
    EXPECT_NE(errorOf(withSessionLines("x = [1, +2.\"\xC6\x92\"]\n")).find("in a number or date"),
              std::string::npos);
    EXPECT_NE(errorOf(withSessionLines("doc = \"\"\"x\\  \xC2\xA7\"\"\"\n"))
                  .find("s.toml:3:14: TOML syntax error: '\xC2\xA7' (U+00A7) after '\\'"),
              std::string::npos);
}

// Valid TOML the guard must leave alone: digits in keys and headers before strings.
TEST(TomlGuard, QuotesAfterDigitsInKeysOpenStrings) {
    for (const char* text :
         {"1a.\"\xC3\xA9\" = 1\n", "a1=\"\xC3\xA9\"\n", "[1a.\"\xC3\xA9\"]\n",
          "x = [1,\"\xC3\xA9\", { a = 2, b = \"\xC3\xA9\" }, 1979-05-27T07:32:00Z, -1.5e3]\n",
          "x = [\n  1, # \xC3\xA9\n  \"\xC3\xA9\",\n]\n"}) {
        const auto e = errorOf(goodSession() + "\n[extra]\n" + text);
        // the session rejects the unknown table, not the TOML
        EXPECT_EQ(e.find("TOML syntax error"), std::string::npos) << text << "\n" << e;
        EXPECT_NE(e.find("extra"), std::string::npos) << text << "\n" << e;
    }
}

TEST(TomlGuard, NonAsciiInStringsAndCommentsIsRead) {
    const auto spec = parseSessionText(
        withSessionLines("doc = \"Caf\xC3\xA9 \\\" \xE3\x80\x81\" # \xC2\xA7 comment\n"), "s.toml");
    EXPECT_EQ(spec.doc, "Caf\xC3\xA9 \" \xE3\x80\x81");
    const auto literal =
        parseSessionText(withSessionLines("doc = '''\n\xC2\xA7 ''\xC3\xA9'''' \n"), "s.toml");
    EXPECT_EQ(literal.doc, "\xC2\xA7 ''\xC3\xA9'");
    // a byte order mark may open the file
    EXPECT_EQ(parseSessionText("\xEF\xBB\xBF" + goodSession(), "s.toml").name, "Bad input base");
}

TEST(TomlGuard, NonAsciiAfterALineEndingBackslashKeepsItsValue) {
    // toml++ issue #190: this valid TOML reached undefined behaviour inside toml++
    const auto spec = parseSessionText(
        withSessionLines("doc = \"\"\"one \\  \n\n\t \xC2\xA7 two \\\n\xF0\x9F\x8E\xB5\"\"\"\n"),
        "s.toml");
    EXPECT_EQ(spec.doc, "one \xC2\xA7 two \xF0\x9F\x8E\xB5");
    // lines after it are still counted right
    EXPECT_NE(errorOf(withSessionLines("doc = \"\"\"\\\n\xC2\xA7\"\"\"\nnmae = 1\n"))
                  .find("s.toml:5:1: unknown key 'nmae'"),
              std::string::npos)
        << errorOf(withSessionLines("doc = \"\"\"\\\n\xC2\xA7\"\"\"\nnmae = 1\n"));
}
