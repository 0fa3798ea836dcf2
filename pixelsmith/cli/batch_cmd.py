"""`pixelsmith batch` lives in :mod:`pixelsmith.jobs.cli` (registered from there); nothing to add here."""


def register(app) -> None:  # noqa: ARG001 - kept so cli.main's module list needs no edit
    return None
