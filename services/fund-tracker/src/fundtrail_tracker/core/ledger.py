"""The fund ledger lives in the contract package (`fundtrail_schemas.ledger`), where the gateway's audit
replays it too; re-exported here for the tracker's modules."""

from fundtrail_schemas.ledger import (
    ContractRecord,
    FundRecord,
    Ledger,
    LedgerKeys,
    PaymentRecord,
    PositionKey,
    ProjectRecord,
    ProvKey,
    Transition,
    UnhandledEventType,
    contract_id_of,
    contract_value,
    counterparty_key,
    handles,
    keys_of,
    missing_handlers,
    prov_key,
    vendor_id_of,
)

__all__ = ["ContractRecord", "FundRecord", "Ledger", "LedgerKeys", "PaymentRecord", "PositionKey", "ProjectRecord",
           "ProvKey", "Transition", "UnhandledEventType", "contract_id_of", "contract_value", "counterparty_key",
           "handles", "keys_of", "missing_handlers", "prov_key", "vendor_id_of"]
