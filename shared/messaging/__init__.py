"""Messaging plumbing: topology, outbox/inbox, consumer entrypoint and dead letters.

See docs/architecture.md, "Message topology" and "Outbox and inbox". Import the
submodules directly (`shared.messaging.outbox`,
...); this package deliberately imports nothing so that the plain-Python parts
(topology, shovel definitions) load without nameko.
"""
