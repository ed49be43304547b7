#!/usr/bin/env python3
"""CPU time (user + system, from wait4) of `spinout render` against `csound` on the .csd
`spinout csd` exports for the same render: the part of the wall-time ratio
(render_vs_csound.sh) that does not depend on how busy the machine is. Alternating runs;
medians. Usage: python3 benchmarks/cpu_vs_csound.py [RUNS]   (after scripts/setup)"""
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "spinout")


def cpu_ms(cmd):
    """Runs cmd with its output discarded; its CPU time in ms, from wait4."""
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.chdir(ROOT)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as work:
        source = os.path.join(work, "input.wav")
        subprocess.run([BIN, "render", "presets/polysynth.toml", "--midi",
                        "presets/polysynth.mid", "--duration", "6", "--tail", "0", "-o",
                        source], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        cases = {
            "polysynth": ["presets/polysynth.toml", "--midi", "presets/polysynth.mid",
                          "--preset", "pad", "--tail", "4"],
            "fmbells": ["presets/fmbells.toml", "--midi", "presets/fmbells.mid", "--tail", "4"],
            "stereodelay": ["presets/stereodelay.toml", "--input", source, "--preset", "dub"],
            "lfofilter": ["presets/lfofilter.toml", "--input", source, "--preset", "wobble"],
        }
        print("| case | spinout render (ms CPU) | csound (ms CPU) | difference (ms) |")
        print("|---|---|---|---|")
        for name, args in cases.items():
            csd = os.path.join(work, name + ".csd")
            subprocess.run([BIN, "csd", *args, "-o", csd], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
            spin, ref = [], []
            for _ in range(runs):
                spin.append(cpu_ms([BIN, "render", *args, "-o",
                                    os.path.join(work, name + ".spinout.wav")]))
                ref.append(cpu_ms(["csound", "-o", os.path.join(work, name + ".csound.wav"),
                                   csd]))
            a, b = statistics.median(spin), statistics.median(ref)
            print(f"| {name} | {a:.1f} | {b:.1f} | {a - b:+.1f} |")


if __name__ == "__main__":
    main()
