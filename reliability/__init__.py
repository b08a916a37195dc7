"""Reliability checks of taskapp, beside the benchmark: fault scenarios
(``python -m reliability.faults``) and a reconciling load test (``python -m reliability.load``),
each on throwaway servers of its own. See reliability/README.md."""
