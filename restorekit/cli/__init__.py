"""The ``restorekit`` command.

Every command imports torch and the library lazily, so ``restorekit --help`` is instant.
User errors (bad arguments, missing or broken files, unknown names) print one line,
``restorekit: error: ...``, and exit with code 2; a traceback means a bug in restorekit.

Commands live in one module per area (images, train, evaluate, data); importing this
package registers them all on ``app``.
"""

from __future__ import annotations

import sys

import typer

from restorekit.cli import bench, data, evaluate, images, train  # noqa: F401 - registers commands
from restorekit.cli._app import EXIT_USER_ERROR, UserError, _fail, _UsageError, app

__all__ = ["EXIT_USER_ERROR", "UserError", "app", "main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code: 0, 2 for a user error, 130 aborted."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        _fail("aborted")
        return 130
    except _UsageError as err:
        ctx = getattr(err, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        _fail(where + err.format_message())
        return EXIT_USER_ERROR
    # OSError: a full disk, a read-only folder, a path that is a file; its message names it.
    except (UserError, ValueError, OSError, ImportError) as err:
        _fail(str(err))
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    code = run(argv)
    if code:
        sys.exit(code)
