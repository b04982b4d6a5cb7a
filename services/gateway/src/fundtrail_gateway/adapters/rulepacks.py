"""Rule packs from the directory in settings."""

from __future__ import annotations

import logging
from pathlib import Path

from fundtrail_schemas.rulepack import RulePack, RulePackError, load_pack_dir

log = logging.getLogger(__name__)


def load_packs(directory: Path) -> list[RulePack]:
    """Every pack of `directory`; an absent directory means no packs yet (logged), a broken pack is an error."""
    if not directory.is_dir():
        log.warning("rule-pack directory %s does not exist; the catalogue lists no packs", directory)
        return []
    try:
        return load_pack_dir(directory)
    except RulePackError:
        log.exception("rule packs in %s do not load", directory)
        raise
