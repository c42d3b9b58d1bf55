"""The torch backend: its runtime and its engine builds."""
