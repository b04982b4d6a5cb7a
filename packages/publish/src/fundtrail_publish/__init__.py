"""The bureaus' publisher: an SDK (`Publisher`) and the `fundtrail publish FILE` command."""

from .sdk import Publisher, PublishSummary

__all__ = ["PublishSummary", "Publisher"]
