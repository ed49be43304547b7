// The parsed session's plain data: lookups and error text.
#include "spinout/spec.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace spinout {

std::string Diagnostic::str() const {
    if (pos.line > 0) return fmt::format("{}:{}:{}: {}", pos.file, pos.line, pos.column, message);
    return fmt::format("{}: {}", pos.file, message);
}

namespace {

std::string joinDiagnostics(const std::vector<Diagnostic>& ds) {
    std::string out;
    for (const auto& d : ds)
        out += (out.empty() ? "" : "\n") + d.str();
    return out;
}

template <class T> const T* byName(const std::vector<T>& items, const std::string& name) {
    for (const auto& item : items)
        if (item.name == name) return &item;
    return nullptr;
}

} // namespace

SessionFileError::SessionFileError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(joinDiagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

std::optional<AutomationMode> AutomationMode::parse(std::string_view text) {
    if (text == "linear") return AutomationMode{linear, 1};
    if (text == "cos") return AutomationMode{cos, 1};
    if (text == "smooth") return AutomationMode{smooth, 1};
    constexpr std::string_view open = "expon(";
    if (text.size() > open.size() + 1 && text.substr(0, open.size()) == open &&
        text.back() == ')') {
        auto inner = text.substr(open.size(), text.size() - open.size() - 1);
        while (!inner.empty() && inner.front() == ' ')
            inner.remove_prefix(1);
        while (!inner.empty() && inner.back() == ' ')
            inner.remove_suffix(1);
        if (inner.size() > 1 && inner[0] == '+' && inner[1] != '-') inner.remove_prefix(1);
        double x = 0;
        const auto [end, ec] = std::from_chars(inner.data(), inner.data() + inner.size(), x);
        if (ec == std::errc() && end == inner.data() + inner.size() && std::isfinite(x) && x > 0)
            return AutomationMode{expon, x};
    }
    return std::nullopt;
}

const InstrSpec* SessionSpec::instr(const std::string& n) const {
    return byName(instrs, n);
}
const BusSpec* SessionSpec::bus(const std::string& n) const {
    return byName(buses, n);
}
const TableSpec* SessionSpec::table(const std::string& n) const {
    return byName(tables, n);
}
const PresetSpec* SessionSpec::preset(const std::string& n) const {
    return byName(presets, n);
}
const PortSpec* SessionSpec::port(const std::string& symbol) const {
    const int i = portIndex(symbol);
    return i < 0 ? nullptr : &ports[static_cast<std::size_t>(i)];
}
int SessionSpec::portIndex(const std::string& symbol) const {
    for (std::size_t i = 0; i < ports.size(); ++i)
        if (ports[i].symbol == symbol) return static_cast<int>(i);
    return -1;
}
int SessionSpec::busIndex(const std::string& n) const {
    for (std::size_t i = 0; i < buses.size(); ++i)
        if (buses[i].name == n) return static_cast<int>(i);
    return -1;
}

} // namespace spinout
