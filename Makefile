# The two commands of the README, and the developer's fast lane. Everything else: .venv/bin/localcloud --help
.PHONY: demo test unit install up down simulate

demo:
	infra/scripts/demo.sh

test:
	infra/scripts/test.sh

# Static checks and the in-memory unit tests in under a minute, no local cloud (infra/scripts/unit.sh).
unit:
	infra/scripts/unit.sh $(ARGS)

install:
	infra/scripts/install.sh

# Compare matching policies in a seeded simulation of the real matching code (docs/simulation.md):
# prints the table, writes build/simulation/simulation.{json,html}. Options: make simulate ARGS="--region 12 --weeks 39 --seed 7 --policies platform,upstream"
simulate: install
	PYTHONPATH=layers/shared:benchmarks:. .venv/bin/python -m simulation $(ARGS)

up: install
	.venv/bin/localcloud up

down:
	.venv/bin/localcloud down
