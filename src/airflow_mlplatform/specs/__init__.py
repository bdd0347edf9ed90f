"""Pure spec builders: plain dicts (Kubernetes manifests, payloads) from arguments, no I/O."""
