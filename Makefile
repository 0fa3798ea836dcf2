# The two commands a new machine needs (see README):
#   make demo   set up .venv and run the demo batch on the embedded engine
#   make test   set up .venv and run the test suite
.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/pixelsmith batch samples/demo.yaml --workers 2

test: setup
	bash scripts/setup.sh --test-extras
	.venv/bin/python -m pytest -q --durations=25
