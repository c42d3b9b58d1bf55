"""Records and where they go: typed records (:mod:`.records`), the append-only JSON-lines file (:mod:`.jsonl`)
and the SQLite history (:mod:`.history`), written together by :mod:`.store`; and what is made from them: the
terminal table (:mod:`.zoo_table`), the INT8 accuracy table (:mod:`.accuracy_table`), the gate's outputs
(:mod:`.gate_outputs`) and the HTML/Markdown/CSV reports (:mod:`.reports`)."""
