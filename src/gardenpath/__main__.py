import sys

from gardenpath.cli import main

sys.exit(main())
