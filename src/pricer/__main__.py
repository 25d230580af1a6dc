"""`python -m pricer` = the `pricer` command."""

from pricer.cli import main

main()
