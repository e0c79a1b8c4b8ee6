"""AWS Glue runs this script for the transform job. It only hands over to the library (shared/runtime/glue.py)."""

import sys

from shared.runtime.glue import main

if __name__ == "__main__":
    main("transform", sys.argv)
