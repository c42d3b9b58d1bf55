"""Jetson / remote deployment: self-contained bundles and running them over SSH."""

from .bundle import write_bundle
from .remote import Target, deploy_run

__all__ = ["Target", "deploy_run", "write_bundle"]
