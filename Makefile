# The two set-up commands of the README: `make demo` and `make test`. Both install what they need.
VENV ?= .venv

.PHONY: demo test

$(VENV)/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV)
	touch $@

$(VENV)/.installed-dev: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV) dev
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/synthaug demo

test: $(VENV)/.installed-dev
	scripts/install-fashion-mnist.sh
	$(VENV)/bin/python -m pytest
