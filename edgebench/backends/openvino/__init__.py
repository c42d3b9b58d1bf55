"""The openvino backend: its runtime and its engine builds."""
