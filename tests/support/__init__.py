"""Test support: the stack built from template.yaml on moto, event builders, a pattern matcher."""
