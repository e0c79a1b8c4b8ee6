"""AWS Glue runs this script for the extract job. It only hands over to the library (shared/glue.py)."""

import sys

from shared.glue import main

if __name__ == "__main__":
    main("extract", sys.argv)
