import sys

from node_config.cli import main

sys.exit(main())
