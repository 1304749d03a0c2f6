# The two commands that work on a fresh machine (see README).
.PHONY: chat test check setup

chat:
	scripts/setup.sh
	.venv/bin/python app.py

# ends with one line of timings: each set-up step, the fast and the slow tests (scripts/test.sh)
test:
	scripts/test.sh

# The fast tests only (no real models, Ray cluster, milvus-lite server or browser): seconds, for every change.
check:
	.venv/bin/python -m pytest -q -m "not slow and not browser"
