"""python -m synthgen.cli"""

from synthgen.cli import main

main()
