"""HTTP entrypoints of the notify service, one mixin per area: thin, each loads its input,
calls one use case and renders."""
