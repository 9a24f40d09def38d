import sys

from rf_mcp.cli import main

sys.exit(main())
