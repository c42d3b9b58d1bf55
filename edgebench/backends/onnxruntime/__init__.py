"""The onnxruntime backend: its runtime and its engine builds."""
