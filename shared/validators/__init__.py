"""Validators for the registry's identifiers: USCC, person IDs, county codes.

Each `validate_*` returns the normalised value or raises
shared.errors.ValidationFailed with a stable code and a Chinese message.
"""
from shared.validators.divisions import Division, Jurisdiction
from shared.validators.person_id import (
    ID_TYPE_NAMES,
    gb11643_check_char,
    make_resident_id,
    validate_foreign_permanent,
    validate_hmt_permit,
    validate_passport,
    validate_person_id,
    validate_resident_id,
)
from shared.validators.uscc import (
    complete_uscc,
    make_uscc,
    org_check_char,
    uscc_check_char,
    validate_uscc,
)

__all__ = [
    "Division", "Jurisdiction",
    "ID_TYPE_NAMES", "gb11643_check_char", "make_resident_id", "validate_foreign_permanent",
    "validate_hmt_permit", "validate_passport", "validate_person_id", "validate_resident_id",
    "complete_uscc", "make_uscc", "org_check_char", "uscc_check_char", "validate_uscc",
]
