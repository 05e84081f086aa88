# The two commands of the README: `make run` (the service on the example) and `make test`.
.PHONY: run test lint bench catalogs

run:
	scripts/bootstrap
	.venv/bin/cyclogram validate
	.venv/bin/cyclogram run

test:
	scripts/bootstrap --system
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest -q

bench:
	scripts/bootstrap
	bench/run

# After a message of the console changed: extract, merge into the ru/en catalogs, compile the .mo files.
catalogs:
	.venv/bin/python scripts/catalogs
