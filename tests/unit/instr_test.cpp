#include "spinout/engine.hpp"
#include "spinout/instr.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace spinout;

TEST(Instr, InlineArgsWithDefaults) {
    Instr i("sine",
            "\n  |iamp=0.1, kfreq=1000, Sname=\"a, b\", ibus|\n  a0 = oscili:a(iamp, kfreq)\n");
    ASSERT_EQ(i.args().size(), 4u);
    EXPECT_EQ(std::get<double>(i.arg("iamp")->value), 0.1);
    EXPECT_EQ(std::get<double>(i.arg("kfreq")->value), 1000);
    EXPECT_EQ(std::get<std::string>(i.arg("Sname")->value), "a, b");
    EXPECT_EQ(std::get<double>(i.arg("ibus")->value), 0);
    // i- and S-args are pfields from p5, in order; k-args are controls
    EXPECT_EQ(i.arg("iamp")->index, 5);
    EXPECT_EQ(i.arg("Sname")->index, 6);
    EXPECT_EQ(i.arg("ibus")->index, 7);
    EXPECT_EQ(i.arg("kfreq")->index, 0);
    EXPECT_EQ(i.controls().size(), 1u);
    EXPECT_EQ(i.maxPfield(), 7);
}

TEST(Instr, ArgsMapOverridesInlineDefaults) {
    Instr i("x", "|kfreq=1000|\nouts oscili:a(kamp, kfreq), a(0)\n",
            {{"kfreq", 220.0}, {"kamp", 0.3}});
    EXPECT_EQ(std::get<double>(i.arg("kfreq")->value), 220);
    EXPECT_EQ(std::get<double>(i.arg("kamp")->value), 0.3);
    EXPECT_EQ(i.controls().size(), 2u);
}

TEST(Instr, PsetGivesDefaultsToNamedPfields) {
    Instr i("sine", R"(
    pset p1, p2, p3, 0, 0.1, 1000
    iamp = p5
    kfreq = p6
    a0 = oscili:a(iamp, kfreq)
    outch 1, a0
)");
    EXPECT_EQ(std::get<double>(i.arg("iamp")->value), 0.1);
    EXPECT_EQ(std::get<double>(i.arg("kfreq")->value), 1000);
    EXPECT_EQ(i.maxPfield(), 6);
    // kfreq stays in p6 and also becomes a dynamic control
    EXPECT_TRUE(i.arg("kfreq")->isControl());
    EXPECT_NE(i.code(1001).find("kfreq tab i__base + 0, giSpinoutCtl"), std::string::npos)
        << i.code(1001);
}

TEST(Instr, StrgetNamesAStringPfield) {
    Instr i("filt", "Schan strget p5\nkcutoff = p6\na0 chnget Schan\nouts a0, a0\n");
    EXPECT_TRUE(i.arg("Schan")->isString());
    EXPECT_EQ(i.arg("Schan")->index, 5);
    EXPECT_TRUE(i.arg("kcutoff")->isControl());
}

TEST(Instr, P4IsReservedAndTheErrorNamesTheLine) {
    try {
        Instr i("bad", "a1 oscili 0.1, 440\nifreq = p4\nouts a1, a1\n");
        FAIL() << "p4 accepted";
    } catch (const InstrError& e) {
        EXPECT_EQ(e.line, 2);
        EXPECT_NE(std::string(e.what()).find("p4"), std::string::npos);
    }
    // p4 in a comment or a string is no use of p4
    EXPECT_NO_THROW(Instr("ok", "a1 oscili 0.1, 440 ; not p4\nprints \"p4\"\nouts a1, a1\n"));
    EXPECT_NO_THROW(Instr("ok", "ip44 = 1\nouts a(0), a(0)\n"));
}

TEST(Instr, BadInlineArgsAreErrors) {
    EXPECT_THROW(Instr("x", "|freq=440|\nouts a(0), a(0)\n"), InstrError);  // no i/k/S
    EXPECT_THROW(Instr("x", "|kfreq=abc|\nouts a(0), a(0)\n"), InstrError); // not a number
    EXPECT_THROW(Instr("x", "|kfreq=1, kfreq=2|\nouts a(0), a(0)\n"), InstrError);
    EXPECT_THROW(Instr("x", "|Sname=3|\nouts a(0), a(0)\n"), InstrError);
    EXPECT_THROW(Instr("x", "|kfreq=1\nouts a(0), a(0)\n"), InstrError);
    EXPECT_THROW(Instr("x", "   \n"), InstrError);
    EXPECT_THROW(Instr("bad name", "outs a(0), a(0)\n"), InstrError);
}

TEST(Instr, BodyLinesKeepTheirNumbers) {
    Instr i("x", "|kfreq=1|\na1 oscili 0.1, kfreq\nouts a1, a1\n");
    const auto code = i.code(1001);
    // line n of the body is line 1 + headerLines() + n of the code
    std::vector<std::string> lines;
    std::string l;
    for (char c : code) {
        if (c == '\n') {
            lines.push_back(l);
            l.clear();
        } else {
            l += c;
        }
    }
    EXPECT_EQ(lines[static_cast<std::size_t>(i.headerLines() + 2)], "a1 oscili 0.1, kfreq");
}

// A 1 MB name is checked without a stack overflow (std::regex recursed per character).
TEST(Instr, LongNamesAreCheckedWithoutRecursion) {
    const std::string body = "a0 = oscili:a(0.1, 440)\nouts a0, a0\n";
    EXPECT_EQ(Instr(std::string(1 << 20, 'a'), body).name().size(), 1u << 20);
    EXPECT_THROW(Instr(std::string(1 << 20, 'a') + "!", body), InstrError);
    EXPECT_THROW(Instr("1abc", body), InstrError);
    EXPECT_THROW(Instr("", body), InstrError);
    EXPECT_NO_THROW(Instr("_a.b-c9", body));
}

namespace {

// Parses `code` with Csound in a child process: false if Csound crashed on it.
bool csoundSurvivesParsing(const std::string& code) {
    const pid_t pid = fork();
    if (pid == 0) {
        spinout::OrcParser parser;
        (void)parser.parse(code);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status);
}

} // namespace

// What Csound 6.18's preprocessor takes for a comment or a string, case by case (Fuzz.policy
// found `"` newline `"/*`, `//` 0xff `/*` and `\//*`, which crashed it): every text found
// safe is one Csound parses without crashing, and each trap found is named at its line.
TEST(Instr, ParserTrapsAsCsoundSeesThem) {
    struct Case {
        std::string code;
        int line;         // 0: no trap
        std::string says; // in the message
    };
    const std::string comment = "/* is never closed with */";
    const std::vector<Case> cases = {
        {"giA = 1\n/* notes */\ngS = {{ /* }}\n", 0, ""},
        {"gS = \"ab /* x\"\ngiA = 1\n", 0, ""},
        {"gS = \"a\\\"/*\"\ngiA = 1\n", 0, ""},     // an escaped quote does not end the string
        {"gS = \"ab\ncd /* x\"\ngiA = 1\n", 0, ""}, // a string spans lines
        {"giA = 1 + \\\n2\ngiB = 1 + \\  ; c\n2\n", 0, ""}, // line continuations
        {"\"\n\"/*", 2, comment},
        {"gS = \"ab\ncd\" /* x\ngiA = 1\n", 2, comment},
        {"giA = 1 ; \"\n/* x", 2, comment}, // the quote is in a comment
        {"giA = 1\n// {{\ngS = {{hh", 3, "{{ is never closed with }}"},
        {"giA = 1\ngS = \"abc\ngiB = 2\n", 2, "\" is never closed"},
        {"giA = 1 ; x \"\n\"/*\n", 2, "\" is never closed"},    // a string from line 2, /* in it
        {"giA = 1\n//\xff/* n \n?", 2, "byte 0xff"},            // 0xff ends a ; or // comment
        {"giA = 1\n\\//*", 2, "outside a string continues"},    // \/ is an escape: /* opens
        {"giA = 1\n\\\"/* x", 2, "outside a string continues"}, // \" is no string
        // found by attacking parserTrap: each crashed Csound's parser, and passed
        // a lone CR ends a ; or // comment for Csound, but not a continuation's comment or
        // an #include's line (found by attack): no lone CR at all
        {"giA = 1 ;\r/*", 1, "carriage return without a line feed"},
        {"giA = 1 // c\r/* x\n", 1, "carriage return without a line feed"},
        {"giA = 1 \\ ;x\r/*\n", 1, "carriage return without a line feed"},
        // Csound reads on past an #include's name to the line's end: past the end of an
        // included file's text it crashed; and it takes \ as / for the file only (both
        // found by attack)
        {"giA = 1\n#include \"b.orc\"", 2, "an #include without a line feed"},
        {"#include \"sub\\a.orc\"\n", 1, "a \\ in an #include's name"},
        // Csound gives up on it, and leaks (found by fuzzing)
        {"#define 4G #0.#\nG\n", 1, "name starts with a digit"},
        {"gS = \"#exit\"\n", 1, "'#exit'"}, // acted on inside a string
        {"gS = \"\\;\"\n\"/* \"\n", 1, "before ; in a string"},
        {"#define X #\"#\n/*\"\n", 1, "body holds \""}, // a body is read raw
        {"#define X #{{#\n/* }}\n", 1, "body holds {{"},
        {"#define X #/*#\n$X\n;*/\n", 1, "body holds /*"},
        {"#define X(a) #\"$a#\n/*\"\n", 1, "with arguments"},
        {"#define M(a) #x#\n$M(", 1, "with arguments"},
        {"#define f(", 1, "with arguments"},
        {"#ifdef NOPE\n\"\n#end\n/* \"\n", 1, "'#ifdef'"},
        {"#ifdef M_PI \"\n/* \"\n", 1, "'#ifdef'"},
        {"giA = 1\n#undef M_PI \"\n/* \"\n", 2, "'#undef'"},
        {"#include\"\n/*\"\n", 1, "malformed #include"},
        {"giA = 1\n#include <udos.inc>\n", 2, "malformed #include"}, // the same mark closes it
        {"giA = $M_PI\n###\n###\ngiB = $M_PI\n", 2, "'###'"},
        {std::string("giA = 1\n/*\0*/", 13), 2, "0x00"},
        // Csound takes `#`, spaces or tabs, `define` for a #define (found by attack: the
        // body rules and the policy's macro rules missed these spellings)
        {"# define X #\"#\n/*\"\n", 1, "body holds \""},
        {"giA = 1\n#\t define X #{{#\n/* }}\n", 2, "body holds {{"},
        {"#  define f(", 1, "with arguments"},
        // macros without arguments and safe bodies stay usable
        {"#define LEVEL #0.5 * 2#\ngiA = $LEVEL\ngiB = $M_PI\n", 0, ""},
        {"# define LEVEL #0.5#\ngiA = $LEVEL\n", 0, ""},
    };
    for (const auto& c : cases) {
        const auto trap = parserTrap(c.code);
        if (c.line == 0) {
            EXPECT_FALSE(trap) << c.code << "\n" << trap->message;
            EXPECT_TRUE(csoundSurvivesParsing(c.code)) << c.code;
            continue;
        }
        ASSERT_TRUE(trap) << c.code;
        EXPECT_EQ(trap->line, c.line) << c.code;
        EXPECT_NE(trap->message.find(c.says), std::string::npos) << trap->message;
    }
}
