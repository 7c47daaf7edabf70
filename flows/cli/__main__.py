"""`python -m flows.cli`: the same as the `erp-sync` console script."""

from flows.cli.app import main

main()
