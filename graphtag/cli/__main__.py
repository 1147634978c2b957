import sys

from graphtag.cli.main import main

sys.exit(main())
