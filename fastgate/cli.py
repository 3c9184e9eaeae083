"""The ``fastgate`` command line (SPEC.md section 1).

Every error a user can cause ends in one line on stderr and a non-zero exit status;
no Python traceback reaches the terminal.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field

from fastgate import __version__

USAGE = """\
usage: fastgate [-?hvtq] [-s signal] [-c filename] [--http-engine auto|h11|httptools]
       fastgate token [--alg ALG] [--key VALUE [ENCODING]] [--claim k=v]... [--exp SECONDS]

  (no arguments)  demo: a protected gateway on 127.0.0.1:8080 with a built-in backend
  -?,-h           this help
  -v, -V          show version and exit
  -t              test configuration and exit
  -q              suppress non-error messages during configuration testing
  -s signal       send signal to the running instance: stop, quit, reopen, reload
  -c filename     set configuration file (default: fastgate.conf)
  --http-engine   protocol engine: auto (default), h11, httptools
"""

SIGNALS = {"stop": signal.SIGTERM, "quit": signal.SIGQUIT, "reopen": signal.SIGUSR1,
           "reload": signal.SIGHUP}


class UsageError(Exception):
    pass


@dataclass
class Options:
    config: str | None = None
    test: bool = False
    quiet: bool = False
    signal: str | None = None
    version: bool = False
    help: bool = False
    http_engine: str | None = None
    rest: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Options:
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1

        def value(flag: str) -> str:
            nonlocal i
            if i >= len(argv):
                raise UsageError(f'option "{flag}" requires {_NEEDS[flag]}')
            i += 1
            return argv[i - 1]

        if a in ("-h", "-?", "--help"):
            o.help = True
        elif a in ("-v", "-V", "--version"):
            o.version = True
        elif a == "-t":
            o.test = True
        elif a == "-q":
            o.quiet = True
        elif a == "-c":
            o.config = value("-c")
        elif a.startswith("-c") and len(a) > 2:
            o.config = a[2:]
        elif a == "-s":
            o.signal = value("-s")
            if o.signal not in SIGNALS:
                raise UsageError(f'invalid option: "-s {o.signal}"')
        elif a == "--http-engine":
            o.http_engine = value("--http-engine")
            if o.http_engine not in ("auto", "h11", "httptools"):
                raise UsageError(f'invalid http engine "{o.http_engine}" (auto, h11, httptools)')
        elif a.startswith("--http-engine="):
            o.http_engine = a.split("=", 1)[1]
            if o.http_engine not in ("auto", "h11", "httptools"):
                raise UsageError(f'invalid http engine "{o.http_engine}" (auto, h11, httptools)')
        else:
            raise UsageError(f'invalid option: "{a}"')
    return o


_NEEDS = {"-c": "file name", "-s": "signal name", "--http-engine": "an engine name"}


def err(message: str) -> None:
    print(f"fastgate: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "token":
            from fastgate.token_tool import main as token_main

            return token_main(args[1:])
        if not args:
            from fastgate.demo import main as demo_main

            return demo_main()
        opts = parse_args(args)
    except UsageError as e:
        err(str(e))
        print(USAGE, file=sys.stderr, end="")
        return 1
    except KeyboardInterrupt:
        return 130
    if opts.help:
        print(USAGE, end="")
        return 0
    if opts.version:
        print(f"fastgate version: fastgate/{__version__}")
        return 0
    path = opts.config or "fastgate.conf"
    if opts.test:
        return test_config(path, opts.quiet)
    if opts.signal:
        return send_signal(path, opts.signal)
    from fastgate.ops.run import run

    return run(path, http_engine=opts.http_engine)


def test_config(path: str, quiet: bool = False) -> int:
    from fastgate.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as e:
        err(f"[emerg] {e}")
        err(f"configuration file {path} test failed")
        return 1
    if not quiet:
        for w in config.warnings:
            err(w)
        err(f"the configuration file {path} syntax is ok")
        err(f"configuration file {path} test is successful")
    return 0


def send_signal(path: str, name: str) -> int:
    from fastgate.config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as e:
        err(f"[emerg] {e}")
        return 1
    pid_file = config.pid or default_pid_path(path)
    try:
        with open(pid_file) as f:
            text = f.read().strip()
    except FileNotFoundError:
        err(f'[error] open() "{pid_file}" failed (2: No such file or directory): '
            "is fastgate running?")
        return 1
    except OSError as e:
        err(f'[error] open() "{pid_file}" failed ({e.errno}: {e.strerror})')
        return 1
    if not text.isdigit():
        err(f'[error] invalid PID number "{text}" in "{pid_file}"')
        return 1
    try:
        os.kill(int(text), SIGNALS[name])
    except ProcessLookupError:
        err(f'[error] kill({text}, {int(SIGNALS[name])}) failed (3: No such process)')
        return 1
    except PermissionError:
        err(f'[error] kill({text}, {int(SIGNALS[name])}) failed (1: Operation not permitted)')
        return 1
    return 0


def default_pid_path(config_path: str) -> str:
    """Where the pid file goes when the config has no ``pid``: beside the config."""
    base = os.path.splitext(os.path.basename(config_path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(config_path)), f"{base}.pid")


def entry() -> None:
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    entry()
