"""The roster of above-scale enterprises and coverage by filed CQOs (art. 4)."""
