"""Jetson / remote deployment: self-contained bundles and running them over SSH."""

from edgebench.deploy.bundle import write_bundle
from edgebench.deploy.remote import Target, deploy_run

__all__ = ["Target", "deploy_run", "write_bundle"]
