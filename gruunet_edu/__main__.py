"""``python -m gruunet_edu``: the same as the ``gruunet-edu`` command."""

import sys

try:
    from gruunet_edu.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still loading the command
    print("gruunet-edu: interrupted while starting", file=sys.stderr)
    exec("None")  # see cli._handled_interrupt: otherwise CPython may end with SIGINT anyway
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
