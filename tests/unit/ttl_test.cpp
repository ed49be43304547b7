// The Turtle spinout writes: IRIs checked, strings escaped, and the [session]
// keys that become what a host shows (author, license, version, category).
#include "spinout/quoted.hpp"
#include "spinout/session_file.hpp"
#include "spinout/ttl.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cmath>

using namespace spinout;

namespace {

std::string effectWith(const std::string& sessionKeys) {
    return R"([session]
name = "Meta"
uri = "urn:spinout:test-meta"
kind = "effect"
)" + sessionKeys +
           R"(

[instr.pass]
body = '''
a1, a2 ins
outs a1, a2
'''
)";
}

// The first error of parsing `text`, as "line:column: message" ("" when it parses).
std::string firstError(const std::string& text) {
    try {
        parseSessionText(text, "meta.toml");
    } catch (const SessionFileError& e) {
        const auto& d = e.diagnostics().front();
        return std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) + ": " + d.message;
    }
    return {};
}

} // namespace

TEST(Ttl, IrisAreAbsoluteAndHoldNothingTurtleReads) {
    for (const char* ok : {"urn:spinout:x", "http://example.org/a/b?c=d&e#f", "mailto:a@b.org",
                           "urn:x:%C3%A9t%c3%a9", "urn:x:été", "tag:a.b,2024:x-y_z~"})
        EXPECT_EQ(iriProblem(ok), "") << ok;
    for (const char* bad :
         {"",        "x",       ":x",       "1a:x",      "ur n:x",  "urn:",    "urn:a b",
          "urn:a>b", "urn:a<b", "urn:a\"b", "urn:a{b",   "urn:a}b", "urn:a|b", "urn:a\\b",
          "urn:a^b", "urn:a`b", "urn:a\nb", "urn:a\x7f", "urn:a%2", "urn:a%zz"})
        EXPECT_NE(iriProblem(bad), "") << bad;
}

TEST(Ttl, StringsEscapeAsTurtleDoes) {
    EXPECT_EQ(quotedString("plain été"), "\"plain été\"");
    EXPECT_EQ(quotedString("a \"q\" \\ b"), R"("a \"q\" \\ b")");
    EXPECT_EQ(quotedString("l1\nl2\r\t"), R"("l1\nl2\r\t")");
    EXPECT_EQ(quotedString(std::string("x\x01y\x7f", 4)), R"("x\u0001y\u007F")");
    // Csound's escaping would leave Turtle's triple-quote and > untouched: Turtle's does too
    EXPECT_EQ(quotedString("> . <urn:x> a <y>"), "\"> . <urn:x> a <y>\"");
    EXPECT_EQ(iriEncode("bright pad/2#x"), "bright%20pad%2F2%23x");
}

// The trust file and bundle grants write their strings the same way: TOML reads them back.
TEST(Ttl, QuotedStringsReadBackAsTomlBasicStrings) {
    const std::string text = "a \"q\" \\ l1\nl2\r\t x\x01y\x7f";
    const auto doc = toml::parse("k = " + quotedString(text));
    EXPECT_EQ(doc["k"].value<std::string>().value_or("?"), text);
}

TEST(Ttl, GeneratedTurtleRefusesWhatItCannotHold) {
    auto spec = parseSessionText(effectWith(""), "meta.toml");
    spec.uri = "urn:x> <y";
    EXPECT_THROW(pluginTtl(spec), TtlError);
    EXPECT_THROW(manifestTtl(spec, "spinout.so"), TtlError);
    spec.uri = "urn:ok";
    EXPECT_THROW(manifestTtl(spec, "../evil.so"), TtlError);
    spec.ports.push_back({});
    spec.ports.back().symbol = "p";
    spec.ports.back().def = std::nan("");
    EXPECT_THROW(pluginTtl(spec), TtlError);
}

TEST(Ttl, SessionMetadataBecomesClassVersionAuthorAndLicense) {
    auto spec = parseSessionText(
        effectWith(
            R"(author = { name = "Jo \"J\" Doe", email = "jo@example.org", homepage = "https://example.org/jo" }
license = "GPL-3.0-or-later"
version = "2.4.6"
category = "reverb")"),
        "meta.toml");
    EXPECT_EQ(spec.meta.authorName, "Jo \"J\" Doe");
    EXPECT_EQ(spec.meta.authorEmail, "mailto:jo@example.org");
    EXPECT_EQ(spec.meta.license, "https://spdx.org/licenses/GPL-3.0-or-later");
    EXPECT_EQ(spec.meta.major, 2);
    const auto ttl = pluginTtl(spec);
    EXPECT_NE(ttl.find("a lv2:Plugin , lv2:ReverbPlugin ;"), std::string::npos) << ttl;
    EXPECT_NE(ttl.find("lv2:minorVersion 4 ;\n    lv2:microVersion 6 ;"), std::string::npos);
    EXPECT_NE(ttl.find("foaf:name \"Jo \\\"J\\\" Doe\""), std::string::npos) << ttl;
    EXPECT_NE(ttl.find("foaf:mbox <mailto:jo@example.org>"), std::string::npos);
    EXPECT_NE(ttl.find("doap:license <https://spdx.org/licenses/GPL-3.0-or-later>"),
              std::string::npos);
    EXPECT_EQ(ttl.find("a lv2:Plugin , doap:Project"), std::string::npos);
    // the manifest carries the version too: lilv picks the newer of two bundles by it
    EXPECT_NE(manifestTtl(spec, "spinout.so").find("lv2:minorVersion 4"), std::string::npos);

    // nothing said: no author, no licence, version 0.0.0; an effect is a plain lv2:Plugin
    const auto bare = parseSessionText(effectWith(""), "meta.toml");
    const auto bareTtl = pluginTtl(bare);
    EXPECT_EQ(bareTtl.find("doap:maintainer"), std::string::npos);
    EXPECT_EQ(bareTtl.find("doap:license"), std::string::npos);
    EXPECT_NE(bareTtl.find("a lv2:Plugin ;"), std::string::npos);
    EXPECT_NE(bareTtl.find("lv2:minorVersion 0 ;"), std::string::npos);
    // a license given as a URL stays as it is; an author may be a name alone
    const auto url = parseSessionText(
        effectWith("license = \"https://example.org/terms\"\nauthor = \"Jo\""), "meta.toml");
    EXPECT_EQ(url.meta.license, "https://example.org/terms");
    EXPECT_EQ(url.meta.authorName, "Jo");
}

TEST(Ttl, BadMetadataIsAnErrorWithItsLine) {
    EXPECT_EQ(firstError(effectWith("version = \"1.2\"")),
              "5:11: version must be \"MAJOR.MINOR.MICRO\", e.g. \"1.0.0\"");
    EXPECT_NE(firstError(effectWith("version = \"1.2.x\"")).find("version must be"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("version = 1")).find("version must be"), std::string::npos);
    EXPECT_EQ(firstError(effectWith("category = \"revreb\"")),
              "5:12: unknown category 'revreb'; did you mean 'reverb'?");
    EXPECT_EQ(firstError(effectWith("category = \"instrument\"")),
              "5:12: category \"instrument\" is for kind = \"instrument\"");
    EXPECT_NE(firstError(effectWith("license = \"GPL 3\"")).find("5:11: license 'GPL 3'"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("author = { name = \"a\", email = \"nobody\" }"))
                  .find("author email 'nobody' is not an address"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("author = { name = \"a\", homepage = \"x>y\" }"))
                  .find("author homepage"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("author = { email = \"a@b.c\" }")).find("needs 'name'"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("author = { name = \"a\", phone = \"1\" }"))
                  .find("unknown key 'phone'"),
              std::string::npos);
    EXPECT_NE(firstError(effectWith("licence = \"MIT\"")).find("did you mean 'license'"),
              std::string::npos);
}
