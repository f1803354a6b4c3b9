import sys

from kdamon.cli.main import main

sys.exit(main())
