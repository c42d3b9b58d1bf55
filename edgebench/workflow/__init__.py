"""The workflow: model source -> artifacts -> engines -> measurements -> records, for every front end, one module
per step so that each is found by its name:

* :mod:`.prepare`: ``prepare`` exports (or imports) a model and builds what a runtime loads;
* :mod:`.measure`: ``measure`` takes one guarded measurement per batch size; ``measure_with_accuracy`` adds
  accuracy on the evaluation split and the paired INT8 speed-up;
* :mod:`.accuracy`: ``evaluate``, an accuracy record of a runtime's engines;
* :mod:`.sweep`: ``sweep`` runs many models x runtimes x precisions, each failure a failed record with the reason;
* :mod:`.gate`: the CI regression gate; :mod:`.peaks`: the GEMM peak a report sets attained compute against.

The CLI (and anything else) calls these; nothing here imports the CLI.
"""
