"""Plain domain rules shared by the county and the city (no broker, no database)."""
