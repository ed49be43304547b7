// The Turtle of a session's plugin (manifest, plugin, presets) and of the loader,
// generated from the session file. Whatever the session says is written as data:
// IRIs are checked, strings escaped, numbers finite; anything else is a TtlError.
#include "spinout/ttl.hpp"

#include "spinout/quoted.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#ifndef SPINOUT_VERSION_MINOR
#define SPINOUT_VERSION_MINOR 0
#define SPINOUT_VERSION_MICRO 0
#endif

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
    if (!events && spec.hostTime) {
        l.events = l.total++;
        l.timeOnly = true;
    }
    return l;
}

std::string iriProblem(std::string_view iri) {
    const auto isAlpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    const auto isHex = [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    };
    const auto colon = iri.find(':');
    if (colon == std::string_view::npos || colon == 0 || !isAlpha(iri[0]))
        return "it is not an absolute IRI (scheme \":\" ..., e.g. \"urn:me:name\")";
    for (std::size_t i = 1; i < colon; ++i) {
        const char c = iri[i];
        if (!isAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.')
            return fmt::format("its scheme '{}' has a '{}'", iri.substr(0, colon), c);
    }
    if (colon + 1 == iri.size()) return "nothing follows the scheme";
    for (std::size_t i = 0; i < iri.size(); ++i) {
        const auto c = static_cast<unsigned char>(iri[i]);
        if (c <= 0x20 || c == 0x7F) return fmt::format("it holds a space or control character");
        if (std::string_view("<>\"{}|\\^`").find(static_cast<char>(c)) != std::string_view::npos)
            return fmt::format("it holds '{}', which an IRI cannot", static_cast<char>(c));
        if (c == '%' && !(i + 2 < iri.size() && isHex(iri[i + 1]) && isHex(iri[i + 2])))
            return "a '%' is not followed by two hex digits";
    }
    return {};
}

std::string iriEncode(std::string_view text) {
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out += ch;
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

namespace {

// LV2's plugin classes (lv2core), by the name a session gives as `category`.
const std::array<std::pair<const char*, const char*>, 40> kClasses = {{
    {"instrument", "InstrumentPlugin"},
    {"generator", "GeneratorPlugin"},
    {"oscillator", "OscillatorPlugin"},
    {"constant", "ConstantPlugin"},
    {"delay", "DelayPlugin"},
    {"reverb", "ReverbPlugin"},
    {"modulator", "ModulatorPlugin"},
    {"chorus", "ChorusPlugin"},
    {"flanger", "FlangerPlugin"},
    {"phaser", "PhaserPlugin"},
    {"filter", "FilterPlugin"},
    {"lowpass", "LowpassPlugin"},
    {"highpass", "HighpassPlugin"},
    {"bandpass", "BandpassPlugin"},
    {"comb", "CombPlugin"},
    {"allpass", "AllpassPlugin"},
    {"eq", "EQPlugin"},
    {"parametric_eq", "ParaEQPlugin"},
    {"multiband_eq", "MultiEQPlugin"},
    {"dynamics", "DynamicsPlugin"},
    {"amplifier", "AmplifierPlugin"},
    {"compressor", "CompressorPlugin"},
    {"envelope", "EnvelopePlugin"},
    {"expander", "ExpanderPlugin"},
    {"gate", "GatePlugin"},
    {"limiter", "LimiterPlugin"},
    {"distortion", "DistortionPlugin"},
    {"waveshaper", "WaveshaperPlugin"},
    {"spatial", "SpatialPlugin"},
    {"spectral", "SpectralPlugin"},
    {"pitch", "PitchPlugin"},
    {"simulator", "SimulatorPlugin"},
    {"utility", "UtilityPlugin"},
    {"analyser", "AnalyserPlugin"},
    {"converter", "ConverterPlugin"},
    {"function", "FunctionPlugin"},
    {"mixer", "MixerPlugin"},
    {"midi", "MIDIPlugin"},
    {"analyzer", "AnalyserPlugin"},
    {"equaliser", "EQPlugin"},
}};

} // namespace

std::string lv2ClassOf(const std::string& category) {
    for (const auto& [name, cls] : kClasses)
        if (category == name) return cls;
    return {};
}

const std::vector<std::string>& lv2Categories() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& [name, cls] : kClasses)
            v.emplace_back(name);
        return v;
    }();
    return names;
}

namespace {

constexpr const char* kPrefixes = R"(@prefix atom: <http://lv2plug.in/ns/ext/atom#> .
@prefix doap: <http://usefulinc.com/ns/doap#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix log: <http://lv2plug.in/ns/ext/log#> .
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix midi: <http://lv2plug.in/ns/ext/midi#> .
@prefix patch: <http://lv2plug.in/ns/ext/patch#> .
@prefix pprops: <http://lv2plug.in/ns/ext/port-props#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix rsz: <http://lv2plug.in/ns/ext/resize-port#> .
@prefix state: <http://lv2plug.in/ns/ext/state#> .
@prefix time: <http://lv2plug.in/ns/ext/time#> .
@prefix units: <http://lv2plug.in/ns/extensions/units#> .
@prefix urid: <http://lv2plug.in/ns/ext/urid#> .
@prefix work: <http://lv2plug.in/ns/ext/worker#> .

)";

// Room in the loader's atom ports for a patch:Set of a path up to 4 KiB.
constexpr int kLoaderAtomBufferBytes = 8192;

// <iri>, or a TtlError naming what is wrong.
std::string iriRef(std::string_view iri, std::string_view what) {
    if (auto problem = iriProblem(iri); !problem.empty())
        throw TtlError(fmt::format("{} '{}' cannot go into Turtle: {}", what, iri, problem));
    return fmt::format("<{}>", iri);
}

// <name> of a file in the bundle (a relative IRI): a plain file name only.
std::string fileRef(std::string_view name) {
    const bool ok = !name.empty() && name != "." && name != ".." &&
                    std::all_of(name.begin(), name.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                               (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                    });
    if (!ok) throw TtlError(fmt::format("'{}' is not a plain file name for the bundle", name));
    return fmt::format("<{}>", name);
}

// A local name after a prefix (units:hz, lv2:DelayPlugin): letters and digits only.
std::string localName(std::string_view prefix, std::string_view name) {
    const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    });
    if (!ok)
        throw TtlError(fmt::format("'{}' is not a name Turtle can take after {}:", name, prefix));
    return fmt::format("{}:{}", prefix, name);
}

std::string num(double v) {
    if (!std::isfinite(v)) throw TtlError(fmt::format("{} is not a finite number", v));
    auto s = fmt::format("{}", v);
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}

std::string presetIri(const SessionSpec& spec, const PresetSpec& p) {
    return iriRef(spec.uri + "#preset-" + iriEncode(p.name), "the preset URI");
}

std::string versionTtl(int minor, int micro) {
    return fmt::format("    lv2:minorVersion {} ;\n    lv2:microVersion {} ;\n", minor, micro);
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
                                 quotedString(p.choices[i]), num(static_cast<double>(i)));
        break;
    }
    case PortScale::linear:
        break;
    }
    // an enum port's value is a choice's index: the unit belongs to the choices' values
    if (!p.unit.empty() && p.choiceValues.empty())
        props += " ;\n        units:unit " + localName("units", p.unit);
    if (p.output) // it shows a bus or channel: no default, nothing the host sets
        return fmt::format(R"( , [
        a lv2:OutputPort , lv2:ControlPort ;
        lv2:index {} ;
        lv2:symbol {} ;
        lv2:name {} ;
        lv2:minimum {} ;
        lv2:maximum {}{}
    ])",
                           index, quotedString(p.symbol), quotedString(p.name), num(p.min),
                           num(p.max), props);
    return fmt::format(R"( , [
        a lv2:InputPort , lv2:ControlPort ;
        lv2:index {} ;
        lv2:symbol {} ;
        lv2:name {} ;
        lv2:default {} ;
        lv2:minimum {} ;
        lv2:maximum {}{}
    ])",
                       index, quotedString(p.symbol), quotedString(p.name), num(p.def), num(p.min),
                       num(p.max), props);
}

// The atom input of an effect that takes the host's time and no MIDI (PortLayout::timeOnly).
std::string timeInputPort(const PortLayout& l) {
    if (!l.timeOnly) return {};
    return fmt::format(R"( , [
        a lv2:InputPort , atom:AtomPort ;
        atom:bufferType atom:Sequence ;
        atom:supports time:Position ;
        lv2:designation lv2:control ;
        lv2:portProperty lv2:connectionOptional ;
        lv2:index {} ;
        lv2:symbol "events" ;
        lv2:name "Host time"
    ])",
                       l.events);
}

std::string commonPorts(const PortLayout& l, int atomBufferBytes, bool time) {
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
    if (l.events < 0 || l.timeOnly) return latency;
    const std::string size =
        atomBufferBytes > 0 ? fmt::format(" ;\n        rsz:minimumSize {}", atomBufferBytes) : "";
    return fmt::format(R"( , [
        a lv2:InputPort , atom:AtomPort ;
        atom:bufferType atom:Sequence ;
        atom:supports midi:MidiEvent , patch:Message{} ;
        lv2:designation lv2:control ;
        lv2:index {} ;
        lv2:symbol "events" ;
        lv2:name "Events"{}
    ] , [
        a lv2:OutputPort , atom:AtomPort ;
        atom:bufferType atom:Sequence ;
        atom:supports patch:Message ;
        lv2:designation lv2:control ;
        lv2:index {} ;
        lv2:symbol "notify" ;
        lv2:name "Notify"{}
    ])",
                       time ? " , time:Position" : "", l.events, size, l.notify, size) +
           latency;
}

// Features and extensions: what the binary checks and provides (plugin/lv2.cpp).
std::string featuresTtl(bool events, bool loader) {
    std::string out;
    if (loader)
        out += "    lv2:requiredFeature urid:map , work:schedule ;\n"
               "    lv2:optionalFeature log:log ;\n"
               "    lv2:extensionData state:interface , work:interface ;\n";
    else if (events)
        out += "    lv2:requiredFeature urid:map ;\n"
               "    lv2:optionalFeature log:log , work:schedule ;\n"
               "    lv2:extensionData work:interface ;\n";
    else // a plain effect: runs without any feature (lv2apply)
        out += "    lv2:optionalFeature urid:map , log:log , work:schedule ;\n"
               "    lv2:extensionData work:interface ;\n";
    return out;
}

// The plugin's project (doap:Project): its name, maintainer and licence. lilv and
// Ardour read the author from it; the plugin itself is not a doap:Project, whose
// label Ardour showed as the category.
std::string projectTtl(const std::string& projectIri, const std::string& name,
                       const PluginMeta& m) {
    std::string out =
        fmt::format("{}\n    a doap:Project ;\n    doap:name {}", projectIri, quotedString(name));
    if (!m.license.empty()) out += " ;\n    doap:license " + iriRef(m.license, "the license");
    if (!m.authorName.empty()) {
        out += " ;\n    doap:maintainer [\n        a foaf:Person ;\n        foaf:name " +
               quotedString(m.authorName);
        if (!m.authorEmail.empty())
            out += " ;\n        foaf:mbox " + iriRef(m.authorEmail, "the author's email");
        if (!m.authorHomepage.empty())
            out += " ;\n        foaf:homepage " + iriRef(m.authorHomepage, "the author's homepage");
        out += "\n    ]";
    }
    return out + " .\n\n";
}

} // namespace

std::string manifestTtl(const SessionSpec& spec, const std::string& binary) {
    const auto uri = iriRef(spec.uri, "the session's uri");
    std::string out = kPrefixes;
    // the version here too: lilv picks the newest of two bundles by their manifests
    out += fmt::format("{}\n    a lv2:Plugin ;\n    lv2:binary {} ;\n{}    rdfs:seeAlso "
                       "<plugin.ttl> .\n",
                       uri, fileRef(binary), versionTtl(spec.meta.minor, spec.meta.micro));
    for (const auto& p : spec.presets)
        out += fmt::format("\n{}\n    a pset:Preset ;\n    lv2:appliesTo {} ;\n"
                           "    rdfs:seeAlso <presets.ttl> .\n",
                           presetIri(spec, p), uri);
    return out;
}

std::string pluginTtl(const SessionSpec& spec) {
    const auto l =
        PortLayout::of(spec, static_cast<int>(spec.ports.size()), PortLayout::needsEvents(spec));
    const auto& m = spec.meta;
    const auto project = iriRef(spec.uri + "#project", "the project URI");
    std::string out = kPrefixes + projectTtl(project, spec.name, m);
    // no doap:Project among the plugin's classes: lilv takes its class from them
    out += fmt::format("{}\n    a lv2:Plugin{} ;\n    lv2:project {} ;\n    doap:name {} ;\n",
                       iriRef(spec.uri, "the session's uri"),
                       m.lv2Class.empty() ? "" : " , " + localName("lv2", m.lv2Class), project,
                       quotedString(spec.name));
    if (!spec.doc.empty()) out += fmt::format("    rdfs:comment {} ;\n", quotedString(spec.doc));
    out += versionTtl(m.minor, m.micro);
    out += featuresTtl(l.events >= 0 && !l.timeOnly, false);
    std::string ports = audioPorts(l.audioIn, l.numIn, true, "in") +
                        audioPorts(l.audioOut, l.numOut, false, "out") +
                        commonPorts(l, 0, spec.hostTime);
    for (std::size_t i = 0; i < spec.ports.size(); ++i)
        ports += controlPort(l.controls + static_cast<int>(i), spec.ports[i]);
    ports += timeInputPort(l);
    out += "    lv2:port" + ports.substr(2) + " .\n";
    return out;
}

std::string presetsTtl(const SessionSpec& spec) {
    const auto uri = iriRef(spec.uri, "the session's uri");
    std::string out = kPrefixes;
    for (const auto& p : spec.presets) {
        out += fmt::format("{}\n    a pset:Preset ;\n    lv2:appliesTo {} ;\n    rdfs:label {}",
                           presetIri(spec, p), uri, quotedString(p.label));
        // every port, so that loading a preset gives the same sound from any state
        for (const auto& port : spec.ports) {
            if (port.output) continue; // a preset sets inputs
            double value = port.def;
            for (const auto& [symbol, v] : p.values)
                if (symbol == port.symbol) value = v;
            out += fmt::format(" ;\n    lv2:port [ lv2:symbol {} ; pset:value {} ]",
                               quotedString(port.symbol), num(value));
        }
        out += " .\n\n";
    }
    return out;
}

std::string loaderManifestTtl(const std::string& binary) {
    return fmt::format("{}<{}>\n    a lv2:Plugin ;\n    lv2:binary {} ;\n{}    rdfs:seeAlso "
                       "<plugin.ttl> .\n",
                       kPrefixes, kLoaderUri, fileRef(binary),
                       versionTtl(SPINOUT_VERSION_MINOR, SPINOUT_VERSION_MICRO));
}

std::string loaderTtl() {
    SessionSpec spec;
    spec.audioInputs = kLoaderInputs;
    spec.audioOutputs = kLoaderOutputs;
    const auto l = PortLayout::of(spec, kLoaderControls, true);
    PluginMeta spinoutMeta;
    spinoutMeta.authorName = "spinout";
    std::string out = kPrefixes + projectTtl(fmt::format("<{}#project>", kLoaderUri),
                                             "spinout loader", spinoutMeta);
    // What a host needs to offer a file chooser (Ardour, jalv.gtk3): a writable
    // lv2:Parameter whose range is atom:Path, set and read with patch messages.
    out += fmt::format(R"(<{0}>
    a lv2:Parameter ;
    rdfs:label "Session file" ;
    rdfs:range atom:Path .

<{1}>
    a lv2:Plugin , lv2:InstrumentPlugin ;
    lv2:project <{1}#project> ;
    doap:name "spinout loader" ;
    rdfs:comment "Loads any spinout session file; its first ports follow the generic controls, each once the host moves it" ;
{2}    patch:writable <{0}> ;
)",
                       kLoaderSessionParam, kLoaderUri,
                       versionTtl(SPINOUT_VERSION_MINOR, SPINOUT_VERSION_MICRO));
    out += featuresTtl(true, true);
    std::string ports = audioPorts(l.audioIn, l.numIn, true, "in") +
                        audioPorts(l.audioOut, l.numOut, false, "out") +
                        commonPorts(l, kLoaderAtomBufferBytes, true);
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
