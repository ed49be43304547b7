# The Python module against the spinout command: the same samples, byte-equal files, errors
# with their file and line, and the README's example. Run by ctest (Python.Pytest) with
# PYTHONPATH=build/python and SPINOUT_BIN, SPINOUT_SOURCE_DIR set.
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import spinout

ROOT = Path(os.environ.get("SPINOUT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = os.environ.get("SPINOUT_BIN", str(ROOT / "build" / "spinout"))
PRESETS = ROOT / "presets"
BAD = ROOT / "tests" / "fixtures" / "bad"


def command(*args, cwd=ROOT):
    r = subprocess.run([BIN, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def wav_floats(path):
    """The samples of a float32 WAV, read from its chunks here (not through libsndfile)."""
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos, channels = 12, None
    while pos < len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if tag == b"fmt ":
            fmt_tag, channels, _, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            assert (fmt_tag, bits) == (3, 32), (fmt_tag, bits)
        if tag == b"data":
            return np.frombuffer(body, dtype="<f4").reshape(-1, channels)
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


@pytest.fixture(scope="module")
def input_wav(tmp_path_factory):
    """Three seconds of stereo input: the polysynth playing, rendered by the command."""
    path = tmp_path_factory.mktemp("input") / "input.wav"
    command("render", "presets/polysynth.toml", "--midi", "presets/polysynth.mid",
            "--duration", "3", "--tail", "0", "-o", path)
    return path


CASES = [
    ("polysynth", ["--midi", "presets/polysynth.mid", "--preset", "pad", "--set", "cutoff=900"]),
    ("fmbells", ["--score", "presets/fmbells.score.toml", "--preset", "glass"]),
    ("fmbells", ["--midi", "presets/fmbells.mid", "--sr", "44100", "--ksmps", "16"]),
    ("stereodelay", ["--input", "INPUT", "--preset", "dub", "--tail", "1"]),
    ("lfofilter", ["--input", "INPUT", "--score", "presets/lfofilter.score.toml"]),
]


def module_render(session, args, input_wav, output=None):
    """The command's options applied through the module."""
    s = spinout.Session(ROOT / "presets" / f"{session}.toml")
    kw = {}
    it = iter(args)
    for opt in it:
        value = next(it)
        if opt == "--preset":
            s.apply_preset(value)
        elif opt == "--set":
            symbol, v = value.split("=")
            s[symbol] = float(v)
        elif opt in ("--midi", "--score"):
            kw[opt[2:]] = ROOT / value
        elif opt == "--input":
            kw["input"] = input_wav
        elif opt in ("--sr", "--ksmps"):
            kw[opt[2:]] = int(value)
        elif opt in ("--tail", "--duration"):
            kw[opt[2:]] = float(value)
    return s.render(output=output, **kw)


@pytest.mark.parametrize("session,args", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_render_is_the_commands_sample_for_sample(session, args, input_wav, tmp_path):
    cli = tmp_path / "cli.wav"
    command("render", f"presets/{session}.toml",
            *[str(input_wav) if a == "INPUT" else a for a in args], "-o", cli)
    mine = tmp_path / "module.wav"
    samples = module_render(session, args, input_wav, output=mine)
    expected = wav_floats(cli)
    assert samples.dtype == np.float32
    assert samples.shape == expected.shape
    assert np.array_equal(samples, expected)
    assert np.abs(samples).max() > 0.01  # it plays
    # the file the module writes is the command's, byte for byte
    assert mine.read_bytes() == cli.read_bytes()
    # and spinout.read gives the same samples
    back, sr = spinout.read(mine)
    assert np.array_equal(back, expected.astype(np.float64))
    assert sr == (44100 if "--sr" in args else 48000)


def test_an_array_as_input_is_the_file_it_came_from(input_wav, tmp_path):
    cli = tmp_path / "cli.wav"
    command("render", "presets/stereodelay.toml", "--input", input_wav, "--preset", "dub",
            "-o", cli)
    audio, sr = spinout.read(input_wav)
    s = spinout.Session(PRESETS / "stereodelay.toml")
    s.apply_preset("dub")
    assert np.array_equal(s.render(input=audio, sr=sr), wav_floats(cli))
    # float32 and mono arrays are taken too; a mono array feeds both inputs
    mono = audio[:, 0].astype(np.float32)
    out = s.render(input=mono, sr=sr)
    assert out.shape == (audio.shape[0] + 2 * sr, 2)
    with pytest.raises(ValueError, match="shape"):
        s.render(input=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        s.render(input=np.full(100, np.nan))


def test_other_formats_are_the_commands_files(tmp_path):
    s = spinout.Session(PRESETS / "polysynth.toml")
    for name, extra in [("x.flac", []), ("x.wav", ["--encoding", "pcm16"])]:
        cli = tmp_path / f"cli-{name}"
        command("render", "presets/polysynth.toml", "--midi", "presets/polysynth.mid",
                "--duration", "2", *extra, "-o", cli)
        mine = tmp_path / f"module-{name}"
        s.render(midi=PRESETS / "polysynth.mid", duration=2, output=mine,
                 encoding=extra[1] if extra else "")
        assert mine.read_bytes() == cli.read_bytes(), name
    with pytest.raises(ValueError, match="--format 'mp3': give one of"):
        s.render(midi=PRESETS / "polysynth.mid", output=tmp_path / "y", format="mp3")


def test_presets_ports_and_info_are_the_commands():
    s = spinout.Session(PRESETS / "polysynth.toml")
    info = json.loads(command("info", "--json", "presets/polysynth.toml").stdout)
    assert s.presets == [p["name"] for p in info["presets"]]
    assert s.ports == info["ports"]
    assert {k: v for k, v in s.info.items() if k != "path"} == \
        {k: v for k, v in info.items() if k != "path"}
    assert s.name == "Spinout Poly Synth" and s.kind == "instrument"
    assert s.uri == "urn:spinout:polysynth"
    assert "4 presets" in repr(s)


def test_ports_keep_what_presets_and_sets_give_them():
    s = spinout.Session(PRESETS / "polysynth.toml")
    assert s["cutoff"] == 1800
    s.apply_preset("pad")
    assert s["cutoff"] == 700 and s.values["release"] == 2.5
    s["cutoff"] = 1234
    s.set("volume", -6)
    assert s.values["cutoff"] == 1234 and s["volume"] == -6
    s.apply_preset("bass")  # a preset sets the ports it names
    assert s["cutoff"] == 180 and s["volume"] == 4
    s.reset()
    assert s.values == {p["symbol"]: p["default"] for p in s.ports}
    with pytest.raises(KeyError, match="did you mean 'cutoff'"):
        s["cutof"] = 3
    with pytest.raises(KeyError, match="no preset 'pda'; did you mean 'pad'"):
        s.apply_preset("pda")
    with pytest.raises(ValueError, match="outside 40 .. 16000"):
        s["cutoff"] = 1
    with pytest.raises(ValueError, match="outside"):
        s["cutoff"] = float("nan")


def test_a_bad_session_raises_with_its_file_and_line():
    with pytest.raises(spinout.Error) as e:
        spinout.Session(BAD / "toml_syntax.toml")
    assert e.value.file.endswith("toml_syntax.toml")
    assert e.value.line == 7
    with pytest.raises(spinout.Error) as e:
        spinout.Session(BAD / "unknown_key.toml")
    assert "unknown key 'nmae' in [session]; did you mean 'name'?" in e.value.message
    assert e.value.line > 0 and e.value.column > 0
    assert str(e.value).startswith(f"{e.value.file}:{e.value.line}:{e.value.column}: ")
    # every error of a file is there, in order
    assert all(len(x) == 4 for x in e.value.errors) and e.value.errors[0][1] == e.value.line
    # Csound's own errors name the session line, at the render that compiles it
    s = spinout.Session(BAD / "csound_syntax.toml")
    with pytest.raises(spinout.Error) as e:
        s.render(duration=1)
    assert e.value.file.endswith("csound_syntax.toml") and e.value.line == 15


def test_a_session_from_text_names_its_lines():
    text = (PRESETS / "polysynth.toml").read_text()
    lines = text.splitlines()
    target = next(i for i, l in enumerate(lines) if l.startswith("release = 0.3"))
    lines[target] = "releese = 0.3"
    with pytest.raises(spinout.Error) as e:
        spinout.Session.from_text("\n".join(lines), path="mine.toml")
    assert e.value.file == "mine.toml"
    assert e.value.line == target + 1
    assert "no port 'releese'; did you mean 'release'?" in e.value.message
    # a good text renders as the file does
    s = spinout.Session.from_text(text, path=PRESETS / "polysynth.toml")
    f = spinout.Session(PRESETS / "polysynth.toml")
    midi = PRESETS / "polysynth.mid"
    assert np.array_equal(s.render(midi=midi, duration=1), f.render(midi=midi, duration=1))


def test_init_code_the_plugins_warm_up_would_run_is_a_warning():
    # the line of the voice that writes a global at init, as `spinout render` names it
    text = (PRESETS / "polysynth.toml").read_text()
    lines = text.splitlines()
    target = next(i for i, l in enumerate(lines) if l.startswith("iatt = "))
    lines.insert(target, "giLast = i(kpitch)")
    s = spinout.Session.from_text("\n".join(lines), path="mine.toml")
    with pytest.warns(UserWarning, match=rf"^mine.toml:{target + 1}:1: instr 'voice' writes "
                      "the global giLast at init"):
        s.render(midi=PRESETS / "polysynth.mid", duration=0.5)


def test_a_session_is_refused_what_it_was_not_granted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no trust file
    marker = tmp_path / "written.wav"
    text = f"""[session]
name = "Writes"
uri = "urn:spinout:test-writes"
kind = "effect"

[instr.fx]
body = '''
a0 = inch(1)
fout "{marker}", 14, a0
outch 1, a0, 2, a0
'''

[[run]]
instr = "fx"
"""
    s = spinout.Session.from_text(text, path=tmp_path / "writes.toml")
    with pytest.raises(spinout.Error) as e:
        s.render(input=np.zeros(4800), duration=0.1)
    assert e.value.line == text.splitlines().index(f'fout "{marker}", 14, a0') + 1
    assert "'write' permission" in e.value.message
    assert not marker.exists()
    with pytest.raises(ValueError):
        s.render(input=np.zeros(4800), duration=0.1, allow=["writ"])
    s.render(input=np.zeros(4800), duration=0.1, allow=["write"])
    assert marker.exists()


def test_missing_files_and_bad_values_raise():
    s = spinout.Session(PRESETS / "polysynth.toml")
    with pytest.raises(spinout.Error, match="cannot read the MIDI file"):
        s.render(midi="/nonexistent.mid")
    with pytest.raises(spinout.Error, match="cannot write"):
        s.render(midi=PRESETS / "polysynth.mid", output="/nonexistent-dir/x.wav")
    with pytest.raises(spinout.Error, match="no audio input"):
        s.render(input=np.zeros(100))
    with pytest.raises(ValueError, match="--sr 10: give a sample rate"):
        s.render(midi=PRESETS / "polysynth.mid", sr=10)
    with pytest.raises(ValueError, match="--tail"):
        s.render(midi=PRESETS / "polysynth.mid", tail=float("inf"))
    with pytest.raises(spinout.Error):
        spinout.read("/nonexistent.wav")


def test_ctrl_c_stops_a_render_and_leaves_no_partial_file(tmp_path):
    s = spinout.Session(PRESETS / "polysynth.toml")
    out = tmp_path / "long.wav"
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        s.render(midi=PRESETS / "polysynth.mid", duration=3000, output=out)
    timer.join()
    assert list(tmp_path.iterdir()) == []


def readme_example():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Python.*?```python\n(.*?)```", text, re.S)
    assert m, "README has no Python example"
    return m.group(1)


def test_the_readme_example_renders_every_preset(tmp_path):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 5
    shutil.copytree(PRESETS, tmp_path / "presets")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    s = spinout.Session(PRESETS / "polysynth.toml")
    written = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert written == sorted(f"polysynth-{p}.wav" for p in s.presets)
    for p in s.presets:
        cli = tmp_path / "cli.wav"
        command("render", "presets/polysynth.toml", "--midi", "presets/polysynth.mid",
                "--preset", p, "-o", cli)
        assert (tmp_path / f"polysynth-{p}.wav").read_bytes() == cli.read_bytes(), p


def test_it_installs_with_cmake_install(tmp_path):
    build = os.environ.get("SPINOUT_BUILD_DIR")
    if not build:
        pytest.skip("run by ctest, which says where the build is")
    subprocess.run([os.environ.get("CMAKE_COMMAND", "cmake"), "--install", build,
                    "--component", "python", "--prefix", tmp_path], check=True,
                   capture_output=True)
    site = tmp_path / os.environ["SPINOUT_PYTHON_INSTALL_DIR"]
    env = dict(os.environ, PYTHONPATH=str(site))
    r = subprocess.run([sys.executable, "-c", "import spinout; print(spinout.__file__)"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert r.stdout.strip().startswith(str(site))
