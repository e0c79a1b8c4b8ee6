"""The RDS CA bundle the Glue jobs verify the databases against (shared/certs/README.md).

Every certificate parses and is an Amazon RDS CA, every signature checks out against the bundle
itself (a corrupted byte would break one), and the current roots of the stack's Region are there
and valid for decades.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from shared.config import RDS_CA_BUNDLE

BUNDLE = Path(__file__).resolve().parents[1] / "shared" / "certs" / RDS_CA_BUNDLE
SHA256 = "fefac91d6800404461cece76724bc0a2383f4f556a1c9beb0813fac6f2e1e49f"  # shared/certs/README.md


def _name(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    return str(name.get_attributes_for_oid(oid)[0].value)


def test_the_bundle_is_the_documented_file_of_amazon_rds_cas_each_signed_as_it_says() -> None:
    data = BUNDLE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256
    certificates = x509.load_pem_x509_certificates(data)
    assert len(certificates) == data.count(b"-----BEGIN CERTIFICATE-----") == 115
    by_subject = {c.subject: c for c in certificates}
    for certificate in certificates:
        assert _name(certificate.subject, NameOID.ORGANIZATION_NAME) == "Amazon Web Services, Inc."
        assert _name(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == "Amazon RDS"
        assert _name(certificate.subject, NameOID.COMMON_NAME).startswith("Amazon RDS ")
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        issuer = by_subject[certificate.issuer]  # every issuer is in the bundle
        certificate.verify_directly_issued_by(issuer)  # raises on a bad signature


def test_the_current_roots_cover_the_stacks_region_for_decades() -> None:
    certificates = x509.load_pem_x509_certificates(BUNDLE.read_bytes())
    now = datetime.now(UTC)
    valid = {
        _name(c.subject, NameOID.COMMON_NAME)
        for c in certificates
        if c.subject == c.issuer and c.not_valid_before_utc <= now < c.not_valid_after_utc
    }
    for kind in ("RSA2048 G1", "RSA4096 G1", "ECC384 G1"):
        assert f"Amazon RDS eu-west-2 Root CA {kind}" in valid
    assert len(valid) == 87
    assert min(c.not_valid_after_utc for c in certificates if "G1" in str(c.subject)).year >= 2061
