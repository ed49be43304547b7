// The Python module `spinout` (pybind11): sessions loaded from a file or text, their presets
// and ports, and renders to numpy arrays or sound files through the renderer's render(), the
// same host loop as `spinout render`, so the samples are the command's. Runs in the calling
// Python thread; the GIL is released while Csound renders.
#include "render.hpp"
#include "render_options.hpp"
#include "session_json.hpp"

#include "spinout/session_file.hpp"
#include "spinout/sound_file.hpp"
#include "spinout/suggest.hpp"
#include "spinout/trust.hpp"

#include <fmt/format.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

namespace py = pybind11;
using namespace spinout;

namespace {

// spinout.Error, created at import; its instances carry file, line, column and message.
PyObject* errorType = nullptr;

// Ctrl-C seen while rendering: the KeyboardInterrupt is pending in Python.
struct Interrupted {};

void raiseError(const std::vector<Diagnostic>& diagnostics) {
    py::list errors;
    std::string text;
    for (const auto& d : diagnostics) {
        errors.append(py::make_tuple(d.pos.file, d.pos.line, d.pos.column, d.message));
        text += (text.empty() ? "" : "\n") + d.str();
    }
    const auto& first = diagnostics.front();
    py::object e = py::reinterpret_borrow<py::object>(errorType)(text);
    e.attr("file") = first.pos.file;
    e.attr("line") = first.pos.line;
    e.attr("column") = first.pos.column;
    e.attr("message") = first.message;
    e.attr("errors") = errors;
    PyErr_SetObject(errorType, e.ptr());
}

// An error with no place in a file (a missing input, an unwritable output): file is what
// it names when known.
void raiseError(const std::string& file, const std::string& message) {
    Diagnostic d;
    d.pos.file = file;
    d.message = message;
    raiseError(std::vector<Diagnostic>{d});
}

std::string pathText(const py::object& p) {
    return py::str(py::module_::import("os").attr("fspath")(p));
}

class PySession {
public:
    static PySession fromFile(const py::object& path) {
        PySession s;
        s.spec_ = std::make_shared<SessionSpec>(parseSessionFile(pathText(path)));
        return s;
    }
    static PySession fromText(const std::string& text, const py::object& path) {
        PySession s;
        const auto p = path.is_none() ? std::string("session.toml") : pathText(path);
        s.spec_ = std::make_shared<SessionSpec>(parseSessionText(text, p));
        return s;
    }

    const SessionSpec& spec() const { return *spec_; }

    std::vector<std::string> presets() const {
        std::vector<std::string> names;
        for (const auto& p : spec_->presets)
            names.push_back(p.name);
        return names;
    }

    py::object info() const {
        return py::module_::import("json").attr("loads")(sessionJson(*spec_, -1));
    }

    const PortSpec& port(const std::string& symbol) const {
        const auto* p = spec_->port(symbol);
        if (p != nullptr) return *p;
        std::vector<std::string> names;
        for (const auto& q : spec_->ports)
            names.push_back(q.symbol);
        throw py::key_error(fmt::format("{}: no port '{}'{}", spec_->path, symbol,
                                        didYouMean(symbol, names, "ports")));
    }

    // A preset's values, as `render --preset` applies them: over what was set before.
    void applyPreset(const std::string& name) {
        const auto* preset = spec_->preset(name);
        if (preset == nullptr)
            throw py::key_error(fmt::format("{}: no preset '{}'{}", spec_->path, name,
                                            didYouMean(name, presets(), "presets")));
        for (const auto& [symbol, value] : preset->values)
            put(symbol, value);
    }

    void set(const std::string& symbol, double value) {
        const auto& p = port(symbol);
        if (!std::isfinite(value) || value < p.min || value > p.max)
            throw py::value_error(
                fmt::format("{}={}: outside {} .. {}", symbol, value, p.min, p.max));
        put(symbol, value);
    }

    double get(const std::string& symbol) const {
        const auto& p = port(symbol);
        for (const auto& [s, v] : values_)
            if (s == symbol) return v;
        return p.def;
    }

    py::dict values() const {
        py::dict d;
        for (const auto& p : spec_->ports)
            d[py::str(p.symbol)] = get(p.symbol);
        return d;
    }

    void reset() { values_.clear(); }

    py::object render(const py::object& midi, const py::object& score, const py::object& input,
                      std::optional<int> sr, std::optional<int> ksmps,
                      std::optional<double> duration, double tail, const py::object& output,
                      const std::string& format, const std::string& encoding,
                      const std::vector<std::string>& allow) {
        RenderJob job;
        job.session = spec_->path;
        job.spec = spec_;
        // as the command: what `allow` names and what the user's trust file grants this text
        try {
            for (const auto& names : allow)
                job.allow |= parsePermissionList(names);
        } catch (const std::invalid_argument& e) {
            throw py::value_error(fmt::format("allow: {}", e.what()));
        }
        job.allow |= recordedGrants(*spec_, TrustFile::defaultPath()).granted;
        if (!midi.is_none()) job.midi = pathText(midi);
        if (!score.is_none()) job.score = pathText(score);
        if (!input.is_none()) {
            if (py::isinstance<py::array>(input))
                job.inputAudio = audioOf(input, sr.value_or(48000));
            else
                job.input = pathText(input);
        }
        job.sr = sr.value_or(0);
        job.ksmps = ksmps;
        job.duration = duration;
        job.tail = tail;
        job.sets = values_;
        job.keepSamples = true;
        try {
            checkRenderValues(job, sr.has_value());
            if (!output.is_none()) {
                job.output = pathText(output);
                job.format = soundFormatFor(job.output, format, encoding);
            } else if (!format.empty() || !encoding.empty()) {
                throw UsageError("format and encoding are for a file: give output too");
            }
        } catch (const UsageError& e) {
            throw py::value_error(e.what());
        }
        // Csound renders without the GIL; Ctrl-C is checked between blocks.
        job.progress = [](double, double) {
            py::gil_scoped_acquire gil;
            if (PyErr_CheckSignals() != 0) throw Interrupted{};
        };
        RenderResult r;
        try {
            py::gil_scoped_release release;
            r = spinout::render(job);
        } catch (const Interrupted&) {
            throw py::error_already_set();
        }
        // what `spinout render` prints as "warning:", as Python warnings
        for (const auto& w : r.warnings)
            if (PyErr_WarnEx(PyExc_UserWarning, w.str().c_str(), 1) != 0)
                throw py::error_already_set(); // warnings turned into errors
        const auto frames = static_cast<py::ssize_t>(r.frames);
        const auto nchnls = static_cast<py::ssize_t>(r.nchnls);
        auto* samples = new std::vector<float>(std::move(r.samples));
        py::capsule owner(samples, [](void* p) { delete static_cast<std::vector<float>*>(p); });
        return py::array_t<float>({frames, nchnls},
                                  {nchnls * static_cast<py::ssize_t>(sizeof(float)),
                                   static_cast<py::ssize_t>(sizeof(float))},
                                  samples->data(), owner);
    }

private:
    void put(const std::string& symbol, double value) {
        for (auto& [s, v] : values_)
            if (s == symbol) {
                v = value;
                return;
            }
        values_.emplace_back(symbol, value);
    }

    // A (frames,) or (frames, channels) array as the render's input.
    static std::shared_ptr<const Audio> audioOf(const py::object& array, int sr) {
        auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(array);
        if (!a || (a.ndim() != 1 && a.ndim() != 2))
            throw py::value_error("input: give an array of shape (frames,) or (frames, channels)");
        auto audio = std::make_shared<Audio>();
        audio->sr = sr;
        audio->nchnls = a.ndim() == 1 ? 1 : static_cast<int>(a.shape(1));
        if (audio->nchnls < 1) throw py::value_error("input: the array has no channels");
        audio->samples.assign(a.data(), a.data() + a.size());
        for (double v : audio->samples)
            if (!std::isfinite(v)) throw py::value_error("input: the array holds NaN or infinity");
        return audio;
    }

    std::shared_ptr<SessionSpec> spec_;
    std::vector<std::pair<std::string, double>> values_; // ports set, in the order first set
};

py::tuple readSound(const py::object& path) {
    Audio a;
    try {
        a = readSoundFile(pathText(path));
    } catch (const SoundFileError& e) {
        raiseError(pathText(path), e.what());
        throw py::error_already_set();
    }
    const auto frames = static_cast<py::ssize_t>(a.frames());
    py::array_t<double> out({frames, static_cast<py::ssize_t>(a.nchnls)});
    std::copy(a.samples.begin(), a.samples.end(), out.mutable_data());
    return py::make_tuple(out, a.sr);
}

} // namespace

PYBIND11_MODULE(spinout, m) {
    m.doc() = "Csound sessions (spinout's TOML files) rendered to numpy arrays and sound files, "
              "sample for sample as `spinout render` renders them.";
    m.attr("__version__") = SPINOUT_VERSION;

    py::object error = py::reinterpret_steal<py::object>(PyErr_NewExceptionWithDoc(
        "spinout.Error",
        "An error in a session, score or input: file, line, column and message (of the first "
        "error), and errors, every (file, line, column, message).",
        PyExc_Exception, nullptr));
    for (const char* attr : {"file", "message"})
        error.attr(attr) = "";
    error.attr("line") = 0;
    error.attr("column") = 0;
    error.attr("errors") = py::list();
    errorType = error.inc_ref().ptr(); // lives as long as the interpreter
    m.attr("Error") = error;

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const SessionFileError& e) {
            raiseError(e.diagnostics());
        } catch (const RenderError& e) {
            raiseError("", e.what());
        } catch (const SoundFileError& e) {
            raiseError("", e.what());
        }
    });

    py::class_<PySession>(m, "Session",
                          "A session file, parsed and checked. Ports keep the values set or "
                          "applied from presets; every render starts a fresh Csound from them.")
        .def(py::init(&PySession::fromFile), py::arg("path"), "Loads a session file (.toml).")
        .def_static("from_text", &PySession::fromText, py::arg("text"),
                    py::arg("path") = py::none(),
                    "A session from its TOML text; `path` names it in errors and is where "
                    "relative file names resolve (default: session.toml in the current folder).")
        .def_property_readonly("path", [](const PySession& s) { return s.spec().path; })
        .def_property_readonly("name", [](const PySession& s) { return s.spec().name; })
        .def_property_readonly("uri", [](const PySession& s) { return s.spec().uri; })
        .def_property_readonly("kind",
                               [](const PySession& s) {
                                   return s.spec().kind == SessionSpec::instrument ? "instrument"
                                                                                   : "effect";
                               })
        .def_property_readonly("info", &PySession::info,
                               "Everything `spinout info --json` prints, as a dict.")
        .def_property_readonly("presets", &PySession::presets,
                               "The preset names, in the order `spinout info` lists them.")
        .def_property_readonly(
            "ports", [](const PySession& s) -> py::object { return s.info()["ports"]; },
            "The ports: dicts with symbol, name, target, min, max, default, unit, scale, "
            "choices, midi_cc.")
        .def_property_readonly("values", &PySession::values,
                               "Every port's value for the next render, by symbol.")
        .def("apply_preset", &PySession::applyPreset, py::arg("name"),
             "Sets the ports the preset names, as `render --preset NAME`.")
        .def("set", &PySession::set, py::arg("symbol"), py::arg("value"),
             "Sets a port, as `render --set SYMBOL=VALUE` (within its range).")
        .def("__setitem__", &PySession::set)
        .def("__getitem__", &PySession::get)
        .def("reset", &PySession::reset, "Every port back to its default.")
        .def("render", &PySession::render, py::kw_only(), py::arg("midi") = py::none(),
             py::arg("score") = py::none(), py::arg("input") = py::none(),
             py::arg("sr") = py::none(), py::arg("ksmps") = py::none(),
             py::arg("duration") = py::none(), py::arg("tail") = 2.0,
             py::arg("output") = py::none(), py::arg("format") = "", py::arg("encoding") = "",
             py::arg("allow") = std::vector<std::string>{},
             "Renders the session as `spinout render` does and returns the samples, a float32 "
             "array of shape (frames, channels). midi, score: files; input: a sound file or an "
             "array of shape (frames,) or (frames, channels) at `sr` (default 48000); output: "
             "also write this file (format and encoding as the command's options); allow: the "
             "permissions granted beyond the trust file's, as `--allow` takes them "
             "(['exec', 'write'] or ['exec,write']).")
        .def("__repr__", [](const PySession& s) {
            return fmt::format("<spinout.Session '{}' ({}, {} ports, {} presets)>", s.spec().name,
                               s.spec().path, s.spec().ports.size(), s.spec().presets.size());
        });

    m.def("read", &readSound, py::arg("path"),
          "Reads a sound file: (samples, sr), samples a float64 array (frames, channels).");
}
