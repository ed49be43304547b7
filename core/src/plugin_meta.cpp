// [session] author, license, version and category, checked where they are
// written so that bad values are errors with a line, not broken Turtle.
#include "plugin_meta.hpp"

#include "spinout/ttl.hpp"

#include <algorithm>
#include <cctype>

namespace spinout::detail {

namespace {

// An SPDX short identifier ("MIT", "GPL-3.0-or-later", "LicenseRef-x").
bool isSpdxId(const std::string& s) {
    if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
    });
}

void parseAuthor(Reader& r, const toml::node& n, PluginMeta& m) {
    const std::string where = "[session] author";
    if (n.is_string()) {
        m.authorName = n.as_string()->get();
        if (m.authorName.empty()) r.error(r.pos(n), "author needs a name");
    } else if (n.is_table()) {
        const auto& t = *n.as_table();
        r.checkKeys(t, {"name", "email", "homepage"}, where);
        m.authorName = r.string(t, "name", where, true).value_or("");
        if (auto email = r.string(t, "email", where)) {
            std::string iri = email->rfind("mailto:", 0) == 0 ? *email : "mailto:" + *email;
            const auto at = iri.find('@');
            auto problem = iriProblem(iri);
            if (problem.empty() && (at == std::string::npos || at == 7 || at + 1 == iri.size()))
                problem = "it is not NAME@DOMAIN";
            if (problem.empty())
                m.authorEmail = iri;
            else
                r.error(r.pos(*t.get("email")),
                        fmt::format("author email '{}' is not an address: {}", *email, problem));
        }
        if (auto home = r.string(t, "homepage", where)) {
            if (auto problem = iriProblem(*home); problem.empty())
                m.authorHomepage = *home;
            else
                r.error(r.pos(*t.get("homepage")),
                        fmt::format("author homepage '{}' is not a URL: {}", *home, problem));
        }
    } else {
        r.error(r.pos(n), "author must be a name or a table { name = \"...\", email = \"...\", "
                          "homepage = \"...\" }");
    }
}

void parseVersion(Reader& r, const toml::node& n, PluginMeta& m) {
    // three numbers of at most six digits, dot-separated
    const std::string text = n.is_string() ? n.as_string()->get() : std::string();
    int parts[3] = {0, 0, 0};
    std::size_t pos = 0;
    bool ok = n.is_string();
    for (int i = 0; ok && i < 3; ++i) {
        const auto end = i < 2 ? text.find('.', pos) : text.size();
        const auto digits = end == std::string::npos ? std::string() : text.substr(pos, end - pos);
        ok = !digits.empty() && digits.size() <= 6 &&
             std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (ok) parts[i] = std::stoi(digits);
        pos = end + 1;
    }
    if (!ok) {
        r.error(r.pos(n), "version must be \"MAJOR.MINOR.MICRO\", e.g. \"1.0.0\"");
        return;
    }
    m.major = parts[0];
    m.minor = parts[1];
    m.micro = parts[2];
}

} // namespace

void parsePluginMeta(Reader& r, const toml::table& s, SessionSpec& spec) {
    auto& m = spec.meta;
    if (const auto* a = s.get("author")) parseAuthor(r, *a, m);
    if (auto license = r.string(s, "license", "[session]")) {
        const std::string iri =
            isSpdxId(*license) ? "https://spdx.org/licenses/" + *license : *license;
        if (auto problem = iriProblem(iri); problem.empty())
            m.license = iri;
        else
            r.error(r.pos(*s.get("license")),
                    fmt::format("license '{}' is neither an SPDX id (\"MIT\", "
                                "\"GPL-3.0-or-later\") nor a URL: {}",
                                *license, problem));
    }
    if (const auto* v = s.get("version")) parseVersion(r, *v, m);
    m.lv2Class = spec.kind == SessionSpec::instrument ? "InstrumentPlugin" : "";
    if (auto category = r.string(s, "category", "[session]")) {
        const auto cls = lv2ClassOf(*category);
        const auto pos = r.pos(*s.get("category"));
        if (cls.empty())
            r.error(pos, fmt::format("unknown category '{}'{}", *category,
                                     didYouMean(*category, lv2Categories(), "categories")));
        else if (cls == "InstrumentPlugin" && spec.kind != SessionSpec::instrument)
            r.error(pos, "category \"instrument\" is for kind = \"instrument\"");
        else
            m.lv2Class = cls;
    }
}

} // namespace spinout::detail
