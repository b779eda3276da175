"""One construct per concern; the stack in `infra.stack` composes them.

Named `components` rather than `constructs` so this package can never shadow the `constructs`
library when `infra/app.py` runs as a script.
"""
