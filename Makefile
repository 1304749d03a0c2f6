# The two commands that work on a fresh machine (see README).
.PHONY: chat test check setup

chat:
	scripts/setup.sh
	.venv/bin/python app.py

test:
	scripts/setup.sh test
	.venv/bin/python -m pytest -q

# The fast tests only (no real models, Ray cluster, milvus-lite server or browser): seconds, for every change.
check:
	.venv/bin/python -m pytest -q -m "not slow and not browser"
