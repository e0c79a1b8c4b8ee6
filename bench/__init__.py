"""`make bench`: the benchmark of the pipeline against the physical COPY floor (docs/performance.md).

Not part of the `shared` library (it never ships to Glue): it drives `totes` as a user would.
"""
