"""The `flowactor` command line (click): `flowactor run`, `flowactor bench`, `--version`.

`cli` is the click group that commands are added to; `main` is the console script's entry
point. Bad input (a usage error, a target that does not load, a store that cannot be opened)
is one line on stderr and exit status 2, never a traceback; Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ._common import BadInput
from .bench import bench
from .run import run

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowactor", prog_name="flowactor")
def cli() -> None:
    """Run flows, and benchmark them.

    Exit status: 0 success, 1 a run (or a benchmarked run) did not complete, 2 bad input,
    130 interrupted.
    """


cli.add_command(run)
cli.add_command(bench)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `flowactor` console script: the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=args, prog_name="flowactor", standalone_mode=False)
    except BadInput as exc:
        print(f"flowactor: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except click.UsageError as exc:  # click's own parsing: name the command's help
        where = exc.ctx.command_path if exc.ctx is not None else "flowactor"
        print(f"flowactor: {exc.format_message()} (see '{where} --help')", file=sys.stderr)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        print("flowactor: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
