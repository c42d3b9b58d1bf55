"""The tensorrt backend: its runtime and its engine builds."""
