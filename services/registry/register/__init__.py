"""The register (arts. 12, 14, 16): forwarded filings decided and recorded, the ledger, the lookup, the award check."""
