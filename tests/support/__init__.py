"""Test helpers shared by the integration and end-to-end suites of several services."""
