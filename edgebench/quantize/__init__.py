"""INT8 models from one calibration set: the ORT Q/DQ recipe, NNCF, sensitivity ranking, and the calibration orchestration."""
