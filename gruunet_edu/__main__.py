"""``python -m gruunet_edu``: the same as the ``gruunet-edu`` command."""

import sys

from gruunet_edu.cli import main

if __name__ == "__main__":
    sys.exit(main())
