"""The executorch backend: ExecuTorch with the XNNPACK delegate (PyTorch's runtime for Android and iOS),
its ``.pte`` programs exported from the PyTorch model, and its PT2E INT8."""
