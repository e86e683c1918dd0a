"""`python -m steno_collab ...`, as the `steno-collab` script: for a checkout run without the
package's entry points installed (its own PYTHONPATH), e.g. a second working copy."""

from steno_collab.cli import main

main()
