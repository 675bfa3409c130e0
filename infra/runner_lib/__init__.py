"""Parts of the deployment runner that CodeBuild runs (infra/runner.py)."""
