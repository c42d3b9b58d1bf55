"""The CI regression gate: is the candidate slower, bigger or less accurate than the baseline?

Three ways to compare, each combinable with budgets (``--budget edgebench.toml``):

* **A/B** (recommended): baseline and candidate loaded in one measurement process per round and
  alternated in ABBA blocks (:mod:`edgebench.bench.paired`); rounds alternate which engine loads first.
  Start with ``rounds``; while the latency verdict is inconclusive, add rounds up to ``max_rounds``.
* **history**: the candidate's rounds against the last N ``latency`` records of the same key
  (model, runtime, precision, batch, threads) on the same host fingerprint. Fewer than
  ``MIN_HISTORY`` records: inconclusive, never pass. Another host: refused unless allowed.
* **budgets** only: absolute limits on the candidate.

Statistics and verdicts are :mod:`edgebench.bench.stats`. The modules, each found by its name:

* :mod:`.sources`: the options of one gate, and the sides it compares (a model, an ONNX file, an artifacts folder);
* :mod:`.budgets`: ``edgebench.toml``'s ``[[budget]]`` tables, and a metric per limit;
* :mod:`.modes`: A/B, history and budget-only measurement, each giving the latency metrics;
* :mod:`.record`: the overall verdict, its exit code and the gate record;
* :mod:`.run`: one gate from a :class:`~.run.GateRequest`, with its record, step summary and JUnit file written.
"""
