"""The Kubernetes test bed: an API server emulator (kmock) and a fake kubelet, on 127.0.0.1.

Fixtures (``k8s``) live in :mod:`kube.fixtures` and are exported by tests/conftest.py.
"""
