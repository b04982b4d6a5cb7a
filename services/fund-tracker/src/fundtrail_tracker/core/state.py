"""The ledger's working state lives in the contract package (`fundtrail_schemas.ledger_state`) beside the
ledger; re-exported here for the tracker's modules."""

from fundtrail_schemas.ledger_state import (
    CONTRACT_MODELS,
    Contract,
    Fund,
    Position,
    Project,
    Vendor,
    dumps,
    from_json,
    from_model,
    to_model,
)

__all__ = ["CONTRACT_MODELS", "Contract", "Fund", "Position", "Project", "Vendor", "dumps", "from_json", "from_model",
           "to_model"]
