"""embedviz's benchmarks: ``python -m benchmarks`` lists them, ``python -m benchmarks NAME [options]`` runs one.

Each compares against a baseline measured in the same invocation (these machines are noisy) and
can write its figures as JSON with ``--json PATH``; the numbers are in docs/benchmarks.md.
"""

#: The benchmarks, in the order ``python -m benchmarks`` lists them: modules of this package with a
#: ``main(argv) -> dict`` of figures.
NAMES = ("startup", "pipeline", "extract", "reduce", "gpu", "scale", "atlas", "audit", "search", "explore_browser",
         "load", "serve_cost", "models")
