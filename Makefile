# Every target installs what it needs into .venv first; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
MANAGE := $(BIN)/python manage.py
DEPLOY_CHECK_KEY := deploy-check-only-$(shell date +%s)-0123456789abcdefghijklmnopqrstuvwxyz

.PHONY: install run test lint bench reliability db-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(MANAGE) migrate --no-input
	$(MANAGE) collectstatic --no-input --verbosity 0
	$(MANAGE) create_first_admin
	$(MANAGE) serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint browser-deps pooler-deps oidc-deps better-auth-deps
	$(MANAGE) check --fail-level WARNING
	$(MANAGE) makemigrations --check --dry-run
	# The production settings must pass Django's deployment checks (no database needed),
	# which include the collected static files the app refuses to serve without.
	$(MANAGE) collectstatic --no-input --verbosity 0
	DJANGO_SETTINGS_MODULE=sv_sdk.settings.production SECRET_KEY=$(DEPLOY_CHECK_KEY) \
		DATABASE_URL=postgres://check@127.0.0.1/check SV_ENCRYPTION_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') $(MANAGE) check --deploy --fail-level WARNING
	$(BIN)/pytest -p no:cacheprovider; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$status
	# The API's tests again, through PgBouncer in transaction mode (docs/pooling.md).
	$(BIN)/python -m tests.pooled

# $(call apt_dep,TARGET,PACKAGE,PRESENT,OTHERWISE): Debian's PACKAGE, installed when the shell
# test PRESENT fails and this runs as root with apt-get; else a line saying OTHERWISE.
apt_dep = if $(3); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2)) \
			|| echo "$(1): could not install $(2); $(4)"; \
	else echo "$(1): no $(2) (installing needs root and apt-get); $(4)"; fi

# $(call npm_dep,TARGET,FOLDER,OTHERWISE): FOLDER's Node packages, pinned in its
# package-lock.json, into its git-ignored node_modules; without npm a line saying OTHERWISE.
npm_dep = if command -v npm >/dev/null 2>&1; then npm ci --prefix $(2) --no-audit --no-fund --silent; \
	else echo "$(1): no npm; $(3)"; fi

# Chromium for the admin's browser tests (tests/browser). Otherwise those tests skip and say why.
.PHONY: browser-deps
browser-deps:
	@$(call apt_dep,browser-deps,chromium,[ -x /usr/bin/chromium ],the browser tests will be skipped)

# PgBouncer for the pooler tests (tests/test_pooler.py, tests/pooled.py) and the pooler
# benchmark. Otherwise those tests and the benchmark skip and say why.
.PHONY: pooler-deps
pooler-deps:
	@$(call apt_dep,pooler-deps,pgbouncer,command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ],the pooler tests will be skipped)

# better-auth's client and server (tests/better_auth): the compatibility and import tests and the
# benchmark peer use them. Without node those tests skip and the benchmark says so.
.PHONY: better-auth-deps
better-auth-deps:
	@$(call npm_dep,better-auth-deps,tests/better_auth,the better-auth tests and the benchmark peer will be skipped)

# The OpenID Provider the sign-in tests run (tests/oidc): oidc-provider. Without node those
# tests skip.
.PHONY: oidc-deps
oidc-deps:
	@$(call npm_dep,oidc-deps,tests/oidc,the OAuth tests against a real provider will be skipped)

# wrk, the load generator of the sv_sdk vs better-auth comparison. Otherwise that section says
# so; the rest runs.
.PHONY: wrk-deps
wrk-deps:
	@$(call apt_dep,wrk-deps,wrk,command -v wrk >/dev/null 2>&1,the better-auth comparison will be skipped)

bench: install better-auth-deps pooler-deps wrk-deps
	$(MANAGE) collectstatic --no-input --verbosity 0
	$(BIN)/python -m benchmarks

reliability: install
	$(BIN)/python -m pip install --quiet -e '.[dev,reliability]'
	$(BIN)/python -m reliability

db-stop: install
	$(BIN)/python -c "from sv_sdk.db.embedded import stop_server; from sv_sdk import env; print('stopped' if stop_server(env.DATA_DIR) else 'not running')"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
