"""Components of the `webapp` Pulumi program: one module per part of the stack."""
