"""The portable core: numpy and OpenCV only, no import from the rest of edgebench.

It is the single home of what the library and the device runner must do identically:
the timed loop and its statistics (:mod:`.protocol`), peak RSS (:mod:`.memory`), image
decoding and preprocessing (:mod:`.images`, :mod:`.preprocess`), hashing and checksums
(:mod:`.hashing`), the host fingerprint (:mod:`.host`), the record envelope and schema
(:mod:`.record`), and the TensorRT rules, builder and engine (:mod:`.tensorrt`).
``edgebench deploy bundle`` copies this folder as it is; a test imports it with the rest
of edgebench off ``sys.path``.
"""
