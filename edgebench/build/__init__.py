"""Model source -> artifact: torch -> ONNX -> engines, each a verified, content-keyed build step."""
