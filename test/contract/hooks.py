"""
Schemathesis hooks for the contract test (test/contract/schemathesis.toml).

Generated requests name records by random ids; in their positive cases, this puts the seeded
records' ids there instead (test/contract/run.ts seeds them and passes them in the
environment), so that a valid request reaches a customer, card, device, recovery, outcome or
scan that exists. Whatever part of a request was generated to be invalid is left as it is: it
must still be refused. Removing a card can succeed once per card, so each positive removal gets
the next of several seeded cards.
"""

import itertools
import os
import uuid

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

CUSTOMER = "PERSONA_CONTRACT_CUSTOMER_ID"

# Per operation: where each id goes, and which environment variable holds it.
IDS = {
    "GET /api/v1/customers/{id}/profile": {"path": {"id": CUSTOMER}},
    "PUT /api/v1/customers/{id}/profile": {"path": {"id": CUSTOMER}},
    "GET /api/v1/customers/{id}/payment-methods": {"path": {"id": CUSTOMER}},
    "POST /api/v1/customers/{id}/payment-methods": {"path": {"id": CUSTOMER}},
    "DELETE /api/v1/customers/{id}/payment-methods/{pmId}": {"path": {"id": CUSTOMER}},
    "GET /api/v1/customers/{id}/possible-matches": {"path": {"id": CUSTOMER}},
    "GET /api/v1/customers/{id}/context": {"path": {"id": CUSTOMER}},
    "GET /api/v1/customers/{id}/checkout-options": {
        "path": {"id": CUSTOMER},
        "query": {"deviceId": "PERSONA_CONTRACT_DEVICE_ID"},
    },
    "GET /api/v1/customers/{id}/events": {
        "path": {"id": CUSTOMER},
        "query": {"before": "PERSONA_CONTRACT_HISTORY_CURSOR"},
    },
    "GET /api/v1/customers/{id}/export": {"path": {"id": CUSTOMER}},
    "DELETE /api/v1/customers/{id}": {"path": {"id": "PERSONA_CONTRACT_ERASE_CUSTOMER_ID"}},
    "GET /api/v1/customers/{id}/erasure": {"path": {"id": "PERSONA_CONTRACT_ERASE_CUSTOMER_ID"}},
    "PUT /api/v1/devices/{id}/trust-score": {"path": {"id": "PERSONA_CONTRACT_DEVICE_ID"}},
    "POST /api/v1/payment-methods/{id}/inactivate": {"path": {"id": "PERSONA_CONTRACT_INACTIVATE_PM_ID"}},
    "GET /api/v1/payment-recoveries/{payment_id}": {"path": {"payment_id": "PERSONA_CONTRACT_PAYMENT_ID"}},
    # A decision names the attention it answers: the one the seeded recovery needs.
    "POST /api/v1/payment-recoveries/{payment_id}/attention": {
        "path": {"payment_id": "PERSONA_CONTRACT_ATTENTION_PAYMENT_ID"},
        "body": {"since": "PERSONA_CONTRACT_ATTENTION_SINCE"},
    },
    "POST /api/v1/payment-recoveries/{payment_id}/no-longer-owed": {
        "path": {"payment_id": "PERSONA_CONTRACT_OWNER_STOP_PAYMENT_ID"}
    },
    "GET /api/v1/fraud-outcomes/{outcome_id}": {"path": {"outcome_id": "PERSONA_CONTRACT_OUTCOME_ID"}},
    "POST /api/v1/fraud-outcomes/{outcome_id}/review": {"path": {"outcome_id": "PERSONA_CONTRACT_OUTCOME_ID"}},
    "GET /api/v1/events": {"query": {"after": "PERSONA_CONTRACT_FEED_CURSOR"}},
    "GET /api/v1/admin/expiry-scans/{workflow_id}": {"path": {"workflow_id": "PERSONA_CONTRACT_SCAN_ID"}},
    # A payment failure names the customer and the card that failed; a fraud outcome the
    # customer, and maybe its card or device.
    "POST /api/v1/payment-failures": {
        "body": {"customer_id": "PERSONA_CONTRACT_PAYER_ID", "payment_method_id": "PERSONA_CONTRACT_PAYER_PM_ID"}
    },
    "POST /api/v1/fraud-outcomes": {
        "body": {
            "customer_id": "PERSONA_CONTRACT_SUSPECT_ID",
            "payment_method_id": "PERSONA_CONTRACT_SUSPECT_PM_ID",
            "device_id": "PERSONA_CONTRACT_SUSPECT_DEVICE_ID",
        }
    },
    # Identity merges: a pair to propose, a merge that happened (its status, its undo), and two
    # awaiting consent, answered with the code their notification carried to the customer.
    "POST /api/v1/identity-merges": {
        "body": {
            "survivor_id": "PERSONA_CONTRACT_PROPOSE_SURVIVOR_ID",
            "merged_id": "PERSONA_CONTRACT_PROPOSE_MERGED_ID",
        }
    },
    "GET /api/v1/identity-merges/{merge_id}": {"path": {"merge_id": "PERSONA_CONTRACT_MERGE_ID"}},
    "POST /api/v1/identity-merges/{merge_id}/undo": {"path": {"merge_id": "PERSONA_CONTRACT_MERGE_ID"}},
    "POST /api/v1/identity-merges/{merge_id}/confirm": {
        "path": {"merge_id": "PERSONA_CONTRACT_CONFIRM_MERGE_ID"},
        "body": {"customer_id": "PERSONA_CONTRACT_CONFIRM_CUSTOMER_ID", "code": "PERSONA_CONTRACT_CONFIRM_CODE"},
    },
    "POST /api/v1/identity-merges/{merge_id}/decline": {
        "path": {"merge_id": "PERSONA_CONTRACT_DECLINE_MERGE_ID"},
        "body": {"customer_id": "PERSONA_CONTRACT_DECLINE_CUSTOMER_ID", "code": "PERSONA_CONTRACT_DECLINE_CODE"},
    },
}

# Cards the customer may remove: a fresh one for each positive removal, then the last again.
REMOVABLE = os.environ.get("PERSONA_CONTRACT_REMOVABLE_PM_IDS", "").split(",")
_next_removable = itertools.chain(REMOVABLE, itertools.repeat(REMOVABLE[-1]))

# Idempotency keys: the pattern allows "0", and the fuzzer sends it again with another body;
# a reused key is refused (422) by design. Positive onboardings get keys of their own.
IDEMPOTENT = {"POST /api/v1/onboarding"}

# Consistency tokens (the `x-persona-consistency` read header): the document names their format
# `persona-consistency-token` beside the pattern. Generated header values are otherwise kept to
# letters and digits, which no token is (they hold `:`), so the fuzzer would send `0` as valid.
_SEQ = st.integers(min_value=0, max_value=10**15 - 1)
schemathesis.openapi.format(
    "persona-consistency-token",
    st.one_of(
        st.tuples(st.uuids(), _SEQ).map(lambda t: f"c:{t[0]}:{t[1]}"),
        st.tuples(st.uuids(), _SEQ).map(lambda t: f"d:{t[0]}:{t[1]}"),
    ),
)

LOCATIONS = {
    "path": (ParameterLocation.PATH, "path_parameters"),
    "query": (ParameterLocation.QUERY, "query"),
    "body": (ParameterLocation.BODY, "body"),
}


@schemathesis.hook
def map_case(context, case):
    label = f"{case.operation.method.upper()} {case.operation.path}"
    meta = case.meta
    for where, fields in IDS.get(label, {}).items():
        location, attribute = LOCATIONS[where]
        container = getattr(case, attribute)
        if not isinstance(container, dict) or (meta is not None and meta.is_negative_at(location)):
            continue
        for field, variable in fields.items():
            if field in container or where == "path":
                value = os.environ[variable]
                if value:
                    container[field] = value
    headers = case.headers
    if label in IDEMPOTENT and headers is not None:
        if not (meta is not None and meta.is_negative_at(ParameterLocation.HEADER)):
            for name in [k for k in list(headers.keys()) if k.lower() == "idempotency-key"]:
                headers[name] = f"{headers[name][:160]}-{uuid.uuid4().hex}"
    # A positive payment failure is a new payment: an id of its own (a generated one is sent again
    # with another body, which a payment id refuses by design), replacing none (`replaces` must name
    # a recovery the ledger has settled; the recovery-replaces integration test covers it).
    if label == "POST /api/v1/payment-failures" and isinstance(case.body, dict):
        if not (meta is not None and meta.is_negative_at(ParameterLocation.BODY)):
            case.body.pop("replaces", None)
            if "payment_id" in case.body:
                case.body["payment_id"] = f"contract-{uuid.uuid4().hex}"
    if label == "DELETE /api/v1/customers/{id}/payment-methods/{pmId}" and isinstance(case.path_parameters, dict):
        if not (meta is not None and meta.is_negative_at(ParameterLocation.PATH)):
            case.path_parameters["pmId"] = next(_next_removable)
    return case
