# Convenience targets. The docs site builds offline: `make docs` (all chapters), or a subset with
# `make docs ONLY="index 04_vae"`; the site lands in docs/_build/html/ (open index.html, or `make serve-docs`).
PYTHON ?= python
ONLY ?=

.PHONY: docs serve-docs test-docs test

docs:
	$(PYTHON) docs/build.py $(if $(ONLY),--only $(ONLY))

serve-docs:
	$(PYTHON) -m http.server 8000 --bind 127.0.0.1 --directory docs/_build/html

test-docs:
	$(PYTHON) -m pytest tests -m docs -q

test:
	bash tools/test.sh
