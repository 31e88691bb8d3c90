"""Messaging plumbing: topology, outbox/inbox, consumer entrypoint and dead letters.

See DESIGN.md section 3. Import the submodules directly (`shared.messaging.outbox`,
...); this package deliberately imports nothing so that the plain-Python parts
(topology, shovel definitions) load without nameko.
"""
