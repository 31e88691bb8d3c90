"""Training (art. 6 任职培训, art. 15 教育培训): courses, who attended them, whether they
passed and the certificate; entered over HTTP or imported from CSV/XLSX, each
certificate announced as `talent.certificate.issued` (docs/events.md)."""
