"""The `research` command (and ``python -m research``): the command line, loaded inside a
guard so that a Ctrl-C while its modules import ends the command as a Ctrl-C at any later
moment does ("interrupted", exit 130), not with Python's traceback of the import."""

import sys


def main() -> None:
    """Console-script entry point: imports the command line, then runs it."""
    try:
        from research.cli.app import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    run()


if __name__ == "__main__":
    main()
