"""The local dashboard (`totes dashboard`): `data.py` builds what it shows from the warehouse and
the lake's run records, `server.py` serves it on 127.0.0.1, `static/` holds the page, its script
and Chart.js (vendored, with its licence: static/README.md)."""
