// libFuzzer target: arbitrary orchestra text through the policy check (Csound's parser on
// a scratch instance, the include scan, the walk). It must never crash, hang or print.
// The session folder is a scratch folder of its own, so confined #includes find nothing.
#include "spinout/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string folder = [] {
        const auto dir = std::filesystem::temp_directory_path() / "spinout_policy_fuzz";
        std::filesystem::create_directories(dir);
        return dir.string();
    }();
    if (size > 64 * 1024) return 0; // the parser's cost grows with the text, not its bugs
    const std::string_view code(reinterpret_cast<const char*>(data), size);
    spinout::checkPolicyCode(code, spinout::Grants::none(folder), "fuzz.orc");
    return 0;
}
