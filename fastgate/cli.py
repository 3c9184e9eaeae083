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
from fastgate.errors import FastgateError

USAGE = """\
usage: fastgate [-?hvVtTq] [-s signal] [-p prefix] [-c filename] [-g directives]
                [--http-engine auto|h11|httptools]
       fastgate token [--alg ALG] --key VALUE [--key-encoding ENC] [--claim k=v]...
                      [--claim-json k=JSON]... [--header k=v]... [--exp SECONDS]
       fastgate token decode TOKEN
       fastgate token verify TOKEN -c FILE [--location URI] [--host NAME]
       fastgate revoke --jti ID | --sub SUB [--before TIME] [--ttl TIME] -c FILE

  (no arguments)  ./fastgate.conf when it exists, else the demo: a protected gateway
                  on 127.0.0.1:8080 with a built-in backend
  -?,-h           this help
  -v              show version and exit
  -V              show version and the versions of what fastgate runs on, and exit
  -t              test configuration and exit
  -T              test configuration, dump it (every included file) and exit
  -q              suppress non-error messages during configuration testing
  -s signal       send signal to the running instance: stop, quit, reopen, reload
  -p prefix       set prefix path: relative paths in the configuration are taken from
                  it (default: the configuration file's directory)
  -c filename     set configuration file (default: fastgate.conf)
  -g directives   set global directives out of configuration file
  --http-engine   protocol engine: auto (default), h11, httptools
"""

SIGNALS = {"stop": signal.SIGTERM, "quit": signal.SIGQUIT, "reopen": signal.SIGUSR1,
           "reload": signal.SIGHUP}


class UsageError(FastgateError):
    pass


@dataclass
class Options:
    config: str | None = None
    test: bool = False
    quiet: bool = False
    signal: str | None = None
    version: bool = False
    versions: bool = False  # -V
    dump: bool = False  # -T
    prefix: str | None = None
    directives: str = ""
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
        elif a in ("-v", "--version"):
            o.version = True
        elif a == "-V":
            o.versions = True
        elif a == "-t":
            o.test = True
        elif a == "-T":
            o.test = o.dump = True
        elif a == "-p":
            o.prefix = value("-p")
        elif a == "-g":
            o.directives = value("-g")
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


_NEEDS = {"-c": "file name", "-s": "signal name", "--http-engine": "an engine name",
          "-p": "prefix path", "-g": "directives"}


def err(message: str) -> None:
    print(f"fastgate: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "token":
            from fastgate.token_tool import main as token_main

            return token_main(args[1:])
        if args and args[0] == "revoke":
            from fastgate.revoke_tool import main as revoke_main

            return revoke_main(args[1:])
        if not args and not os.path.exists("fastgate.conf"):
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
    if opts.versions:
        print(f"fastgate version: fastgate/{__version__}")
        print(versions())
        return 0
    # absolute, as nginx names it: the main file in messages as the included ones are
    path = os.path.abspath(opts.config or "fastgate.conf")
    if opts.test:
        return test_config(path, opts.quiet, opts.prefix, opts.directives, opts.dump)
    if opts.signal:
        return send_signal(path, opts.signal, opts.prefix, opts.directives)
    from fastgate.ops.run import run

    return run(path, err, http_engine=opts.http_engine, prefix=opts.prefix,
               directives=opts.directives)


def versions() -> str:
    """``-V``: what this fastgate runs on, for a bug report."""
    import platform
    import ssl
    from importlib import metadata

    lines = [f"python {platform.python_version()} ({platform.python_implementation()}), "
             f"{ssl.OPENSSL_VERSION}"]
    for dist in ("uvloop", "httptools", "h11", "cryptography"):
        try:
            lines.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{dist}: not installed")
    built = []
    for mod in ("fastgate._core", "fastgate._wire", "fastgate.http.httptools_engine",
                "fastgate.proxy.fast", "fastgate.proxy.request", "fastgate.ops.counters"):
        try:
            __import__(mod)
            built.append(mod)
        except ImportError:
            built.append(f"{mod} (not built)")
    lines.append("compiled modules: " + ", ".join(built))
    return "\n".join(lines)


def test_config(path: str, quiet: bool = False, prefix: str | None = None,
                directives: str = "", dump: bool = False) -> int:
    from fastgate.config import ConfigError, load_config
    from fastgate.ops.logs import LogOpenError, check_logs

    try:
        config = load_config(path, prefix, directives)
        check_logs(config)
    except (ConfigError, LogOpenError) as e:
        err(f"[emerg] {e}")
        err(f"configuration file {path} test failed")
        return 1
    if not quiet:
        for w in config.warnings:
            err(w)
        err(f"the configuration file {path} syntax is ok")
        err(f"configuration file {path} test is successful")
    if dump:
        from fastgate.config.parser import config_files

        for name in config_files(path):
            with open(name, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
            sys.stdout.write(f"# configuration file {name}:\n{text}")
            if not text.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.write("\n")
    return 0


def send_signal(path: str, name: str, prefix: str | None = None, directives: str = "") -> int:
    from fastgate.config import ConfigError, load_config

    try:
        config = load_config(path, prefix, directives)
    except ConfigError as e:
        err(f"[emerg] {e}")
        return 1
    if config.pid is None:
        err('[error] "pid off" in the configuration: there is no pid file to read')
        return 1
    pid_file = config.pid
    try:
        with open(pid_file) as f:
            text = f.read().strip()
    except FileNotFoundError:
        err(f'[error] open() "{pid_file}" failed (2: No such file or directory): '
            "is fastgate running?")
        return 1
    except (OSError, UnicodeDecodeError) as e:
        reason = f"{e.errno}: {e.strerror}" if isinstance(e, OSError) else "not text"
        err(f'[error] open() "{pid_file}" failed ({reason})')
        return 1
    # 0 and negative numbers would signal a process group (kill(2)); above the kernel's
    # pid_max is no process at all
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= _pid_max():
        err(f'[error] invalid PID number "{text[:40]}" in "{pid_file}"')
        return 1
    if not _is_fastgate(int(text)):
        err(f'[error] process {text} named in "{pid_file}" is not fastgate: '
            "a stale pid file? nothing was signalled")
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


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4194304  # the kernel's ceiling


def _is_fastgate(pid: int) -> bool:
    """Whether ``pid`` runs fastgate (its command line names it), so that a stale pid
    file whose number now belongs to another program never gets it signalled. Without
    /proc there is no way to tell: the signal goes, as nginx sends it."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")
    except OSError:
        return False
    return b"fastgate" in cmdline


def entry() -> None:
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("fastgate."):
            raise
        # run from a source checkout that was never built (it shadows an installed
        # fastgate when the current directory is the checkout)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        err(f"the compiled module {e.name} is missing from {here}: this is a source "
            "checkout that was not built. Run \"make build\" there, or run fastgate "
            "from another directory to use the installed package")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    entry()
