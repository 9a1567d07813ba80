# The two set-up commands of the README. Both work on a fresh machine with python3 and,
# for the tests, root access to apt (headless Chromium checks the HTML traces).
.PHONY: demo test

demo:
	python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/colm-graph run "What is 17 * 23 + 48?"

test:
	command -v chromium >/dev/null && command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium redis-server)
	python3 -m venv .venv && .venv/bin/pip install -e ".[local,dev]" && .venv/bin/pytest
