# The two commands of the README, and the developer's fast lane. Everything else: .venv/bin/localcloud --help
.PHONY: demo test unit install up down

demo:
	infra/scripts/demo.sh

test:
	infra/scripts/test.sh

# Static checks and the in-memory unit tests in under a minute, no local cloud (infra/scripts/unit.sh).
unit:
	infra/scripts/unit.sh $(ARGS)

install:
	infra/scripts/install.sh

up: install
	.venv/bin/localcloud up

down:
	.venv/bin/localcloud down
