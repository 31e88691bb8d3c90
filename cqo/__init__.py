"""The `cqo` command line: the CLI, the demo, `cqo stack`, the process runner (not imported by services)."""
