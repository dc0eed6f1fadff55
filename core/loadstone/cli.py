"""The ``loadstone`` command line: list plugins, inspect, render, fetch and demo images.

Run as ``loadstone …`` (console script) or ``python -m loadstone …``.  Only
the standard library is used here (argparse), and :func:`main` returns the
exit code instead of exiting, so tests and other programs can call it
in-process.

Exit codes: 0 success, 1 a load or I/O error, 2 a usage error, 130 interrupted.
Every error is reported as ONE line ``loadstone: error: …`` on stderr; ``--debug``
adds the traceback and DEBUG logging.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import IO, NoReturn

import loadstone
from loadstone.errors import LoadOptionError, LoadstoneError

from ._cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    apply_settings,
    error,
    one_line,
)
from ._cli.demo import DEFAULT_DEMO_DIR, cmd_demo
from ._cli.fetch import cmd_fetch
from ._cli.inspect_commands import cmd_info, cmd_plugins, cmd_render, cmd_series

__all__ = ["main", "build_parser", "positive_int"]

DEFAULT_TIMEOUT = 60.0


# ---------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting.

    argparse's own ``error`` prints a usage block and calls ``sys.exit``;
    raising lets :func:`main` keep the one-line error rule and return a code.
    """

    def error(self, message: str) -> NoReturn:
        hint = f"see '{self.prog} --help'"
        raise UsageError(f"{message} ({hint})")


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more (0 = no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1 (for plugins' options too, ``loadstone_cli_options``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    """An argparse type: a finite float (window centers may be negative)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser(plugin_options: bool = False) -> argparse.ArgumentParser:
    """The full parser; exposed so docs and tests can print or inspect the usage.

    With ``plugin_options`` the installed plugins add their options to the
    commands (``loadstone_cli_options``; e.g. ``fetch --scheduler``), which
    imports every plugin, so only the commands that have such options ask.
    """
    # --debug is accepted before and after the command (``loadstone info X --debug``).
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and DEBUG logging")
    common.add_argument("--header", action="append", metavar="'NAME: VALUE'",
                        help="an HTTP header for every request (repeatable); also LOADSTONE_HEADERS="
                             "'Name: value; Name: value'")
    common.add_argument("--bearer-token-env", metavar="VARIABLE",
                        help="send 'Authorization: Bearer <token>' with the token read from this "
                             "environment variable (keeps it out of the process list)")
    common.add_argument("--option", action="append", metavar="KEY=VALUE",
                        help="a load option for every load (repeatable; VALUE as JSON if it parses)")
    common.add_argument("--set", action="append", metavar="PLUGIN.KEY=VALUE",
                        help="change a plugin setting for this run, e.g. web.file_root=/data (repeatable)")

    parser = _Parser(
        prog=PROG,
        description="Load images by image id (scheme:…) with loadstone and its plugins.",
        epilog="Run 'loadstone COMMAND --help' for a command's options. "
               "Exit codes: 0 ok, 1 load/I-O error, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {loadstone.__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show tracebacks and DEBUG logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = commands.add_parser("plugins", parents=[common], help="list installed plugins and their schemes",
                            description="List the plugins found through the 'loadstone' entry points.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_plugins)

    p = commands.add_parser("info", parents=[common], help="load an image and print its fields and metadata",
                            description="Load IMAGE_ID and print its fields and the metadata modules "
                                        "the providers answer for it.")
    p.add_argument("image_id", metavar="IMAGE_ID")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_timeout(p)
    p.set_defaults(handler=cmd_info)

    p = commands.add_parser("render", parents=[common], help="render an image to PNG",
                            description="Render IMAGE_ID (modality LUT, VOI window, inversion) to PNG.")
    p.add_argument("image_id", metavar="IMAGE_ID")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="where to write the PNG ('-' for stdout)")
    p.add_argument("--window", nargs=2, type=_finite_float, metavar=("CENTER", "WIDTH"),
                   help="VOI window in modality units, e.g. --window -600 1500 (default: the image's)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="invert grey levels (default: as the image says, i.e. MONOCHROME1)")
    _add_timeout(p)
    p.set_defaults(handler=cmd_render)

    p = commands.add_parser("fetch", parents=[common], help="load many images into .npy files",
                            description="Load images (or whole series) and write each as .npy (and/or "
                                        "PNG) plus manifest.json into DIR.")
    p.add_argument("image_ids", nargs="*", metavar="IMAGE_ID")
    p.add_argument("--series", action="append", default=[], metavar="SERIES_ID",
                   help="add every image of a series (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write (created)")
    p.add_argument("--png", action="store_true", help="also write a PNG of each image (its own window)")
    p.add_argument("--no-npy", dest="npy", action="store_false", help="do not write .npy files")
    p.add_argument("--concurrency", type=positive_int, metavar="N",
                   help="loads at once (sets the pool's 'prefetch' limit; default: the pool's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_timeout(p, "per image")
    p.set_defaults(handler=cmd_fetch)
    if plugin_options:
        loadstone.plugin_hooks().loadstone_cli_options(command="fetch", parser=p)

    p = commands.add_parser("series", parents=[common], help="list the series in a folder, DICOMDIR or study",
                            description="List the series at LOCATION (a DICOM folder, a DICOMDIR, …) with "
                                        "the series id that picks each one.")
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("-r", "--recursive", action="store_true", help="look into subfolders too")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_series)

    p = commands.add_parser("demo", parents=[common], help="render the embedded demo images to PNG",
                            description="Render the demo images of the loadstone-base64-demo plugin "
                                        "(scheme 'example') to PNG files.")
    p.add_argument("-o", "--output", default=DEFAULT_DEMO_DIR, metavar="DIR",
                   help=f"folder to write (created; default ./{DEFAULT_DEMO_DIR})")
    _add_timeout(p)
    p.set_defaults(handler=cmd_demo)
    return parser


def _add_timeout(parser: argparse.ArgumentParser, what: str = "") -> None:
    suffix = f" {what}" if what else ""
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"give up on a load after this long{suffix} (default {DEFAULT_TIMEOUT:g}; "
                             "0 = no limit)")


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(plugin_options=_command_of(args_list) in _PLUGIN_COMMANDS)
        args = parser.parse_args(args_list)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return EXIT_OK
    debug = bool(getattr(args, "debug", False))
    with _DebugLogging(debug), warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args.handler, args, debug)


_PLUGIN_COMMANDS = frozenset({"fetch"})


def _command_of(args: Sequence[str]) -> str | None:
    """The command word of a command line (the first argument that is not an option)."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace, debug: bool) -> int:
    """Call a command, turning every failure into one stderr line and an exit code."""
    try:
        apply_settings(args)
        return handler(args)
    except KeyboardInterrupt:
        cancelled = _cancel_all()
        if debug:
            traceback.print_exc()
        error("interrupted" + (f"; cancelled {cancelled} load(s)" if cancelled else ""))
        return EXIT_INTERRUPTED
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except LoadOptionError as exc:  # --option (or a plugin's) names an option the loader does not take
        error(f"{exc} (given with --option)")
        return EXIT_USAGE
    except BrokenPipeError:
        # `loadstone plugins | head`: the reader left; say nothing more.
        _silence_stdout()
        return EXIT_ERROR
    except LoadstoneError as exc:
        if debug:
            traceback.print_exc()
        error(str(exc))
        return EXIT_ERROR
    except OSError as exc:
        if debug:
            traceback.print_exc()
        error(_os_error_message(exc))
        return EXIT_ERROR
    except Exception as exc:  # a bug somewhere: still one line unless --debug
        if debug:
            traceback.print_exc()
            error(f"{type(exc).__name__}: {exc}")
        else:
            error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_ERROR


def _os_error_message(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: IO[str] | None = None, line: str | None = None) -> None:
    """Warnings (plugin failures, scheme conflicts) as one line each, not Python's two."""
    print(f"{PROG}: warning: {one_line(str(message))}", file=file or sys.stderr)


def _cancel_all() -> int:
    try:
        return loadstone.cancel_load_all()
    except Exception:  # never mask the interrupt
        return 0


def _silence_stdout() -> None:
    """After EPIPE, point stdout at devnull so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class _DebugLogging:
    """With --debug, DEBUG logs of ``loadstone.*`` on stderr; removed again on exit.

    Attached to the ``loadstone`` logger (not the root) and undone afterwards,
    so an in-process ``main()`` leaves the host program's logging as it was.
    """

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self.handler: logging.Handler | None = None
        self.level = logging.NOTSET

    def __enter__(self) -> None:
        if not self.debug:
            return
        logger = logging.getLogger("loadstone")
        self.level = logger.level
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(self.handler)
        logger.setLevel(logging.DEBUG)

    def __exit__(self, *exc_info: object) -> None:
        if self.handler is not None:
            logger = logging.getLogger("loadstone")
            logger.removeHandler(self.handler)
            logger.setLevel(self.level)
