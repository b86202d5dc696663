import sys

from embedviz.cli import main

sys.exit(main())
