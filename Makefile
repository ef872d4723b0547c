# The two commands of the README. Everything else: .venv/bin/localcloud --help
.PHONY: demo test install up down

demo:
	infra/scripts/demo.sh

test:
	infra/scripts/test.sh

install:
	infra/scripts/install.sh

up: install
	.venv/bin/localcloud up

down:
	.venv/bin/localcloud down
