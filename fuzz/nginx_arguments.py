"""Differential load test against nginx: every directive of tests/config/test_directives.py's
samples that nginx 1.22 also has, its arguments mutated one at a time, given to
``nginx -t`` and to fastgate's loader; prints each mutation on which they disagree.

    python fuzz/nginx_arguments.py [NAME...]    (needs nginx; a few minutes for all)

"fastgate refuses, nginx loads" is a configuration from the wild that would not load
(issue 17's first concern); "fastgate loads, nginx refuses" is a -t that passes what
nginx's would not. Known and kept differences: header names and URIs nginx takes
empty or without "/" (a header ``""``, ``mirror abc``), paths that must exist, and the
bounds nginx checks after parsing (``*_busy_buffers_size`` against ``*_buffers``)."""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "config"), str(ROOT)]

from test_directives import SAMPLES, _config  # noqa: E402

from fastgate.config import ConfigError, load_config  # noqa: E402

VALUES = ["abc", "0", "-1", "on", "off", "On", "OFF", "1k", "1G", "10s", "1m 30s", "1y",
          "+1", "01", "999999999999999999999", ""]
ORDER = ["location", "server", "http", "main", "events"]


def _nginx_contexts() -> dict[str, list[str]]:
    out = {}
    for line in (ROOT / "tests/config/nginx_1.22_directives.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            parts = line.split(None, 2)
            out[parts[1]] = (parts[2] if len(parts) > 2 else "").replace(" ", "").split(",")
    return out


def _quote(arg: str) -> str:
    if arg == "" or (any(c in arg for c in " \t;{}\"'$\\#") and not arg.startswith("$")):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


class Judges:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="nginx-arguments-"))

    def nginx(self, text: str) -> str | None:
        """None when nginx -t takes ``text``, else its [emerg] message."""
        path = self.tmp / "n.conf"
        path.write_text(f"pid {self.tmp}/n.pid; error_log {self.tmp}/e.log;\n"
                        + ("" if "events" in text else "events { }\n") + text)
        done = subprocess.run(["nginx", "-t", "-q", "-p", str(self.tmp), "-c", str(path)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return None
        said = [line for line in done.stderr.splitlines() if "[emerg]" in line]
        return said[0].split("] ", 1)[1] if said else done.stderr.strip()[-120:]

    def fastgate(self, text: str) -> str | None:
        path = self.tmp / "f.conf"
        path.write_text(text)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                load_config(str(path))
        except ConfigError as e:
            return str(e)
        except Exception as e:  # noqa: BLE001 (what this tool is for: a crash is a finding)
            return f"CRASH {type(e).__name__}: {e}"
        return None


def main(only: list[str]) -> int:
    contexts = _nginx_contexts()
    judges = Judges()
    tried = found = 0
    for name, sample in SAMPLES.items():
        if (only and name not in only) or name not in contexts or "{" in sample:
            continue
        ctx = next((c for c in ORDER if c in contexts[name]), None)
        if ctx is None or any(k in sample for k in ("KEYFILE", "GEOIPDIR", "XSLTDIR")):
            continue
        words = shlex.split(sample.rstrip().rstrip(";"))
        base = _config(ctx, " ".join(_quote(w) for w in words) + ";")
        if judges.nginx(base) is not None or judges.fastgate(base) is not None:
            continue  # (a sample that needs files or other directives nginx has not)
        args = words[1:]
        variants = [[words[0], *args[:i], v, *args[i + 1:]]
                    for i in range(len(args)) for v in VALUES if v != args[i]]
        variants += [words[:-1]] if args else []
        variants.append([*words, "extra"])
        for variant in variants:
            body = " ".join(_quote(w) for w in variant) + ";"
            text = _config(ctx, body)
            theirs, ours = judges.nginx(text), judges.fastgate(text)
            tried += 1
            if (theirs is None) != (ours is None) or (ours or "").startswith("CRASH"):
                found += 1
                print(f"{body!r}: nginx {'loads' if theirs is None else theirs[:100]} | "
                      f"fastgate {'loads' if ours is None else ours[:100]}", flush=True)
    print(f"{tried} variants, {found} differences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
