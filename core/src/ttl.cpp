#include "spinout/ttl.hpp"

#include "spinout/engine.hpp"
#include "spinout/ports.hpp"

#include <fmt/format.h>

namespace spinout {

bool PortLayout::needsEvents(const SessionSpec& spec) {
    if (spec.kind == SessionSpec::instrument) return true;
    for (const auto& p : spec.ports)
        if (p.midiCC) return true;
    return false;
}

PortLayout PortLayout::of(const SessionSpec& spec, int numControls, bool events) {
    PortLayout l;
    l.numIn = spec.audioInputs;
    l.numOut = spec.audioOutputs;
    l.audioIn = 0;
    l.audioOut = l.numIn;
    int next = l.audioOut + l.numOut;
    if (events) {
        l.events = next++;
        l.notify = next++;
    }
    l.latency = next;
    l.controls = l.latency + 1;
    l.numControls = numControls;
    l.total = l.controls + numControls;
    return l;
}

namespace {

constexpr const char* kPrefixes = R"(@prefix atom: <http://lv2plug.in/ns/ext/atom#> .
@prefix doap: <http://usefulinc.com/ns/doap#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix midi: <http://lv2plug.in/ns/ext/midi#> .
@prefix opts: <http://lv2plug.in/ns/ext/options#> .
@prefix patch: <http://lv2plug.in/ns/ext/patch#> .
@prefix pprops: <http://lv2plug.in/ns/ext/port-props#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .
@prefix units: <http://lv2plug.in/ns/extensions/units#> .
@prefix urid: <http://lv2plug.in/ns/ext/urid#> .
@prefix work: <http://lv2plug.in/ns/ext/worker#> .
@prefix bufsz: <http://lv2plug.in/ns/ext/buf-size#> .
@prefix log: <http://lv2plug.in/ns/ext/log#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

)";

// A Turtle short string escapes as a Csound string literal does.
std::string quote(const std::string& s) {
    return csoundString(s);
}

std::string num(double v) {
    auto s = fmt::format("{}", v);
    if (s.find_first_of(".eE") == std::string::npos && s.find("inf") == std::string::npos &&
        s.find("nan") == std::string::npos)
        s += ".0";
    return s;
}

std::string audioPorts(int first, int count, bool input, const std::string& prefix) {
    std::string out;
    for (int i = 0; i < count; ++i)
        out += fmt::format(R"( , [
        a lv2:AudioPort , lv2:{}Port ;
        lv2:index {} ;
        lv2:symbol "{}_{}" ;
        lv2:name "{} {}"
    ])",
                           input ? "Input" : "Output", first + i, prefix, i + 1,
                           input ? "In" : "Out", i + 1);
    return out;
}

std::string controlPort(int index, const PortSpec& p) {
    std::string props;
    switch (p.scale) {
    case PortScale::log:
        props = " ;\n        lv2:portProperty pprops:logarithmic";
        break;
    case PortScale::integer:
        props = " ;\n        lv2:portProperty lv2:integer";
        break;
    case PortScale::toggle:
        props = " ;\n        lv2:portProperty lv2:toggled";
        break;
    case PortScale::enumeration: {
        props = " ;\n        lv2:portProperty lv2:integer , lv2:enumeration";
        for (std::size_t i = 0; i < p.choices.size(); ++i)
            props += fmt::format(" ;\n        lv2:scalePoint [ rdfs:label {} ; rdf:value {} ]",
                                 quote(p.choices[i]), num(static_cast<double>(i)));
        break;
    }
    case PortScale::linear:
        break;
    }
    if (!p.unit.empty()) props += fmt::format(" ;\n        units:unit units:{}", p.unit);
    return fmt::format(R"( , [
        a lv2:InputPort , lv2:ControlPort ;
        lv2:index {} ;
        lv2:symbol "{}" ;
        lv2:name {} ;
        lv2:default {} ;
        lv2:minimum {} ;
        lv2:maximum {}{}
    ])",
                       index, p.symbol, quote(p.name), num(p.def), num(p.min), num(p.max), props);
}

std::string commonPorts(const PortLayout& l) {
    const std::string latency = fmt::format(R"( , [
        a lv2:OutputPort , lv2:ControlPort ;
        lv2:designation lv2:latency ;
        lv2:index {} ;
        lv2:symbol "latency" ;
        lv2:name "Latency" ;
        lv2:portProperty lv2:reportsLatency , lv2:integer , pprops:notOnGUI ;
        units:unit units:frame
    ])",
                                            l.latency);
    if (l.events < 0) return latency;
    return fmt::format(R"( , [
        a lv2:InputPort , atom:AtomPort ;
        atom:bufferType atom:Sequence ;
        atom:supports midi:MidiEvent , patch:Message ;
        lv2:designation lv2:control ;
        lv2:index {} ;
        lv2:symbol "events" ;
        lv2:name "Events"
    ] , [
        a lv2:OutputPort , atom:AtomPort ;
        atom:bufferType atom:Sequence ;
        atom:supports patch:Message ;
        lv2:index {} ;
        lv2:symbol "notify" ;
        lv2:name "Notify"
    ])",
                       l.events, l.notify) +
           latency;
}

constexpr const char* kFeatures =
    R"(    lv2:optionalFeature urid:map , lv2:isLive , work:schedule , log:log , opts:options , bufsz:boundedBlockLength ;
    opts:supportedOption bufsz:maxBlockLength , bufsz:nominalBlockLength ;
    lv2:extensionData state:interface , work:interface ;
    doap:license <https://spdx.org/licenses/MIT> ;
    doap:maintainer [ foaf:name "spinout" ] ;
)";

} // namespace

std::string manifestTtl(const SessionSpec& spec, const std::string& binary) {
    std::string out = kPrefixes;
    out += fmt::format(
        "<{}>\n    a lv2:Plugin ;\n    lv2:binary <{}> ;\n    rdfs:seeAlso <plugin.ttl> .\n",
        spec.uri, binary);
    for (const auto& p : spec.presets)
        out += fmt::format("\n<{}#preset-{}>\n    a pset:Preset ;\n    lv2:appliesTo <{}> ;\n"
                           "    rdfs:seeAlso <presets.ttl> .\n",
                           spec.uri, p.name, spec.uri);
    return out;
}

std::string pluginTtl(const SessionSpec& spec) {
    const auto l =
        PortLayout::of(spec, static_cast<int>(spec.ports.size()), PortLayout::needsEvents(spec));
    std::string out = kPrefixes;
    // LV2 has no general effect class: an effect is a plain lv2:Plugin
    out += fmt::format("<{}>\n    a {} , doap:Project ;\n    doap:name {} ;\n", spec.uri,
                       spec.kind == SessionSpec::instrument ? "lv2:InstrumentPlugin" : "lv2:Plugin",
                       quote(spec.name));
    if (!spec.doc.empty()) out += fmt::format("    rdfs:comment {} ;\n", quote(spec.doc));
    out += kFeatures;
    std::string ports = audioPorts(l.audioIn, l.numIn, true, "in") +
                        audioPorts(l.audioOut, l.numOut, false, "out") + commonPorts(l);
    for (std::size_t i = 0; i < spec.ports.size(); ++i)
        ports += controlPort(l.controls + static_cast<int>(i), spec.ports[i]);
    out += "    lv2:port" + ports.substr(2) + " .\n";
    return out;
}

std::string presetsTtl(const SessionSpec& spec) {
    std::string out = kPrefixes;
    for (const auto& p : spec.presets) {
        out += fmt::format("<{}#preset-{}>\n    a pset:Preset ;\n    lv2:appliesTo <{}> ;\n"
                           "    rdfs:label {}",
                           spec.uri, p.name, spec.uri, quote(p.label));
        // every port, so that loading a preset gives the same sound from any state
        for (const auto& port : spec.ports) {
            double value = port.def;
            for (const auto& [symbol, v] : p.values)
                if (symbol == port.symbol) value = v;
            out += fmt::format(" ;\n    lv2:port [ lv2:symbol \"{}\" ; pset:value {} ]",
                               port.symbol, num(value));
        }
        out += " .\n\n";
    }
    return out;
}

std::string loaderManifestTtl(const std::string& binary) {
    return fmt::format(
        "{}<{}>\n    a lv2:Plugin ;\n    lv2:binary <{}> ;\n    rdfs:seeAlso <plugin.ttl> .\n",
        kPrefixes, kLoaderUri, binary);
}

std::string loaderTtl() {
    SessionSpec spec;
    spec.audioInputs = kLoaderInputs;
    spec.audioOutputs = kLoaderOutputs;
    const auto l = PortLayout::of(spec, kLoaderControls, true);
    std::string out = kPrefixes;
    out += fmt::format(R"(<{0}#session>
    a lv2:Parameter ;
    rdfs:label "Session file" ;
    rdfs:range atom:Path .

<{0}>
    a lv2:InstrumentPlugin , doap:Project ;
    doap:name "spinout loader" ;
    rdfs:comment "Loads any spinout session file; its ports map to the generic controls in order" ;
    patch:writable <{0}#session> ;
)",
                       kLoaderUri);
    out += kFeatures;
    std::string ports = audioPorts(l.audioIn, l.numIn, true, "in") +
                        audioPorts(l.audioOut, l.numOut, false, "out") + commonPorts(l);
    for (int i = 0; i < kLoaderControls; ++i) {
        PortSpec p;
        p.symbol = fmt::format("control_{}", i + 1);
        p.name = fmt::format("Control {}", i + 1);
        p.min = 0;
        p.max = 1;
        p.def = 0.5;
        ports += controlPort(l.controls + i, p);
    }
    out += "    lv2:port" + ports.substr(2) + " .\n";
    return out;
}

} // namespace spinout
