#!/usr/bin/env bash
# make test: set-up, then the whole suite, then one line saying where the time went (set-up steps, the fast and
# the slow tests), so every CI log shows it. The exit status is pytest's.
set -uo pipefail
cd "$(dirname "$0")/.."
times=$(mktemp -d)
trap 'rm -rf "$times"' EXIT
export RAG_SETUP_TIMES="$times/setup" RAG_TEST_PHASES="$times/tests"

scripts/setup.sh test || exit
start=$SECONDS
# --durations: the slowest tests by name, the first thing to read when the suite grows
.venv/bin/python -m pytest -q --durations=25 "$@"
status=$?
echo "make test: $(cat "$RAG_SETUP_TIMES") | pytest $((SECONDS - start))s, $(cat "$RAG_TEST_PHASES" 2>/dev/null \
  || echo "no test phases") | total ${SECONDS}s"
exit $status
