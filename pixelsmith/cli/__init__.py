"""The ``pixelsmith`` command line (Typer + rich)."""
