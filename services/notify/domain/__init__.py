"""Plain rules of the notify service (no broker, no database): who hears of which event
on which channel (`recipients`), and when a delivery is tried again (`schedule`)."""
