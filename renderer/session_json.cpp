// A session described as JSON (see session_json.hpp), written with nlohmann::json so that
// escaping and number formatting are a library's concern, not ours.
#include "session_json.hpp"

#include <nlohmann/json.hpp>

namespace spinout {

namespace {

using Json = nlohmann::ordered_json; // keys in the order written, as in the session file

Json argValue(const ArgValue& v) {
    if (const auto* d = std::get_if<double>(&v)) return *d;
    return std::get<std::string>(v);
}

const char* scaleName(PortScale s) {
    switch (s) {
    case PortScale::linear:
        return "linear";
    case PortScale::log:
        return "log";
    case PortScale::integer:
        return "integer";
    case PortScale::toggle:
        return "toggle";
    case PortScale::enumeration:
        return "enum";
    }
    return "linear";
}

} // namespace

std::string sessionJson(const SessionSpec& spec, int indent) {
    Json j;
    j["path"] = spec.path;
    j["session"] = {
        {"name", spec.name},
        {"uri", spec.uri},
        {"kind", spec.kind == SessionSpec::instrument ? "instrument" : "effect"},
        {"doc", spec.doc},
        {"audio_inputs", spec.audioInputs},
        {"audio_outputs", spec.audioOutputs},
        {"ksmps", spec.ksmps},
        {"a4", spec.a4},
    };
    j["instrs"] = Json::array();
    for (const auto& is : spec.instrs) {
        Json args = Json::array();
        for (const auto& a : is.instr->args()) {
            Json arg = {{"name", a.name},
                        {"kind", std::string(1, a.name.front())},
                        {"default", argValue(a.value)}};
            // k-args are rows of the control table; i- and S-args are pfields (p5 on)
            arg[a.isControl() ? "control" : "pfield"] = a.index;
            args.push_back(std::move(arg));
        }
        j["instrs"].push_back({{"name", is.name},
                               {"priority", is.priority.value_or(1)},
                               {"doc", is.doc},
                               {"args", std::move(args)}});
    }
    j["buses"] = Json::array();
    for (const auto& b : spec.buses)
        j["buses"].push_back({{"name", b.name},
                              {"kind", b.kind == BusKind::audio ? "audio" : "control"},
                              {"value", b.value}});
    j["midi"] = nullptr;
    if (spec.midi)
        j["midi"] = {{"instr", spec.midi->instr},
                     {"pitch", spec.midi->pitch},
                     {"velocity", spec.midi->velocity},
                     {"voices", spec.midi->voices},
                     {"bend_range", spec.midi->bendRange}};
    j["ports"] = Json::array();
    for (std::size_t i = 0; i < spec.ports.size(); ++i) {
        const auto& p = spec.ports[i];
        j["ports"].push_back({{"index", i},
                              {"symbol", p.symbol},
                              {"name", p.name},
                              {"target", p.targetText},
                              {"min", p.min},
                              {"max", p.max},
                              {"default", p.def},
                              {"unit", p.unit},
                              {"scale", scaleName(p.scale)},
                              {"choices", p.choices},
                              {"midi_cc", p.midiCC ? Json(*p.midiCC) : Json(nullptr)}});
    }
    j["presets"] = Json::array();
    for (const auto& p : spec.presets) {
        Json values = Json::object();
        for (const auto& [symbol, value] : p.values)
            values[symbol] = value;
        j["presets"].push_back(
            {{"name", p.name}, {"label", p.label}, {"values", std::move(values)}});
    }
    return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

} // namespace spinout
