"""Oversight of filed CQOs (arts. 5, 10): terms and their reminders, replacement recommendations, the overdue list."""
