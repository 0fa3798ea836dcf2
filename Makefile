# The two commands a new machine needs (see README):
#   make demo   set up .venv and run the demo batch on the embedded engine
#   make test   set up .venv the same way (plus Chromium for the browser tests) and run the test suite
.PHONY: demo test

demo:
	bash scripts/setup.sh
	.venv/bin/pixelsmith batch samples/demo.yaml --workers 2

test:
	bash scripts/setup.sh --test-extras
	.venv/bin/python -m pytest -q --durations=25
