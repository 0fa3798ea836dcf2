# The two commands a new machine needs (see README):
#   make demo   set up .venv and run the demo batch on the embedded engine
#   make test   set up .venv the same way (plus Chromium for the browser tests), run the static checks
#               (make check: ruff lint, ruff format, mypy) and the test suite
.PHONY: demo test check

demo:
	bash scripts/setup.sh
	.venv/bin/pixelsmith batch samples/demo.yaml --workers 2

check:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

test:
	bash scripts/setup.sh --test-extras
	$(MAKE) check
	.venv/bin/python -m pytest -q --durations=25
