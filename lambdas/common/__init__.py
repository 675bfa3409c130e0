"""Code shared by the task handlers."""
