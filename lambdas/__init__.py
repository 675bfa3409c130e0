"""Lambda task handlers of the deployment state machine, one module per task."""
