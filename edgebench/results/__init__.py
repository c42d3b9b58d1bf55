"""Records and where they go: typed records (:mod:`.records`), the append-only JSON-lines store
(:mod:`.store`), and the tables made from them (:mod:`.report`, :mod:`.accuracy_report`)."""
