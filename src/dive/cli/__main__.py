"""`python -m dive.cli`: the command line, as `dive`."""

import sys

from dive.cli.run import main

sys.exit(main())
