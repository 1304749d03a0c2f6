# The two commands that work on a fresh machine (see README).
.PHONY: chat test setup

chat:
	scripts/setup.sh
	.venv/bin/python app.py

test:
	scripts/setup.sh test
	.venv/bin/python -m pytest -q
