"""The local Kubernetes control plane and node agent used by make demo and the tests (devenv)."""
