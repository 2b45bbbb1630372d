# mapservice — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: soak stress bench bench-smoke bench-map demo demo-fonts test install test-install system-deps assets lint typecheck test-sqlite test-postgresql serve translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed assets

# Front-end libraries (Leaflet, Bootstrap) come from the npm registry and are served by the app.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: node_modules/.installed

# Charts and the printed map draw Chinese with Debian's Noto CJK font (not shipped in the repo).
demo-fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . || { echo "installing fonts-noto-cjk"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q fonts-noto-cjk \
	  || echo "warning: no CJK font: the dashboard's charts and the printed map need fonts-noto-cjk"; }

demo: install demo-fonts
	$(BIN)/mapservice db upgrade
	$(BIN)/mapservice seed demo
	@echo
	@echo "  mapservice demo: http://$(HOST):$(PORT)/"
	@echo "  log-ins (password mapservice-demo):"
	@echo "    demo-admin      committee admin, Runzhou"
	@echo "    demo-secretary  secretary of 中国移动镇江分公司"
	@echo "    demo-booker     booker of 瑞祥科技集团青年团支部"
	@echo
	$(BIN)/mapservice serve --host $(HOST) --port $(PORT)

# PostgreSQL server, Redis server (the shared rate limit's tests), Chromium + chromedriver, a
# CJK font (charts, the printed map) and nginx (tests/test_city_nginx.py), from Debian's
# packages when missing.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

translations: $(VENV)/.test-installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k _ -k N_ --ignore-dirs ".* _* node_modules" -o mapservice/translations/messages.pot .
	$(BIN)/pybabel update -i mapservice/translations/messages.pot -d mapservice/translations

lint: $(VENV)/.test-installed
	$(BIN)/ruff check mapservice tests migrations geodata
	$(BIN)/ruff format --check mapservice tests migrations geodata

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy mapservice

test-sqlite: $(VENV)/.test-installed assets
	$(BIN)/pytest -q -p no:cacheprovider --durations=25 --db sqlite

test-postgresql: $(VENV)/.test-installed assets system-deps
	$(BIN)/pytest -q -p no:cacheprovider --durations=25 --db postgresql

# The two databases' suites run at the same time (-j2): each spends much of its time waiting on
# Chromium, the live servers and PostgreSQL, so on two cores both together take little more than
# the longer one alone. -Otarget prints each one's output whole, as soon as it has ended; the
# benchmarks' smoke run takes the first slot a suite frees. Fails if any of the three fails (and
# then starts nothing more). `make test-sqlite` and `make test-postgresql` run one suite alone.
test: system-deps $(VENV)/.test-installed assets lint typecheck
	@$(MAKE) --no-print-directory -j2 -Otarget test-sqlite test-postgresql bench-smoke

# The soak at full length: 32 clients booking, cancelling and rescheduling through gunicorn for
# five minutes on each database (make test runs the same test for 15 s per database).
SOAK_SECONDS ?= 300
soak: $(VENV)/.test-installed assets system-deps
	$(BIN)/pytest -q -s -p no:cacheprovider --db sqlite --soak-seconds $(SOAK_SECONDS) tests/test_soak.py
	$(BIN)/pytest -q -s -p no:cacheprovider --db postgresql --soak-seconds $(SOAK_SECONDS) tests/test_soak.py

# Stress: 20,000 overlapping booking attempts per database (16 threads, then 16 processes;
# capacities 1 and 3; singles and weekly series), checked from the database; each database's
# summary, with the date, replaces its block in docs/reliability.md.
STRESS_ATTEMPTS ?= 20000
# ... and the booking engine against its brute-force oracle over this many random sequences
# (make test runs 30).
STATEFUL_EXAMPLES ?= 200
stress: $(VENV)/.test-installed system-deps
	$(BIN)/pytest -q -s -p no:cacheprovider --db sqlite --timeout 3600 --stress-attempts $(STRESS_ATTEMPTS) tests/test_stress.py
	$(BIN)/pytest -q -s -p no:cacheprovider --db postgresql --timeout 3600 --stress-attempts $(STRESS_ATTEMPTS) tests/test_stress.py
	$(BIN)/pytest -q -p no:cacheprovider --db sqlite --timeout 3600 --stateful-examples $(STATEFUL_EXAMPLES) tests/test_booking_stateful.py
	$(BIN)/pytest -q -p no:cacheprovider --db postgresql --timeout 3600 --stateful-examples $(STATEFUL_EXAMPLES) tests/test_booking_stateful.py

serve: install
	$(BIN)/mapservice serve --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

# The one map at 10,000 venues, ours vs the naive folium page (writes bench/results/map.json;
# exits 3 when one of its targets in bench/targets.toml is missed).
bench-map: $(VENV)/.test-installed assets system-deps
	$(BIN)/python bench/map_bench.py

# City-scale benchmarks, each beside its baseline (docs/performance.md): 10,000 venues and
# 1,000,000 bookings on SQLite and PostgreSQL (production durability settings). Long. Prints
# the table target / measured / met of bench/targets.toml and exits 2 when a target is missed
# (1 when a correctness check failed); writes bench/results/latest.json and the generated
# block of docs/performance.md.
bench: $(VENV)/.test-installed assets system-deps
	$(BIN)/python bench/run.py

# The same benchmarks at a small size, inside `make test`: the same table, marked 'smoke — not
# judged'; fails on a correctness check only, never on a timing.
bench-smoke: $(VENV)/.test-installed assets system-deps
	$(BIN)/python bench/run.py --smoke
