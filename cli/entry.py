"""The ``npdvae`` program: imports the command line and runs it.

Importing NumPy, Numba and h5py takes about a second; an interrupt in that
second would otherwise print a traceback of the import machinery. Here it
ends in one line and exit 130, as an interrupt anywhere else does.
"""

import sys


def run():
    try:
        from .main import main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    main()
